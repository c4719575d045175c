"""The common alternative to Custom::StageBinding, for the bench's comparison row.

A crhelper custom resource whose Create reads one CloudFormation stack output with boto3 and
writes it as a stage variable by deploying the stage (apigateway create_deployment with
stageName and variables). Properties: RestApiId, StageName, Variables (name -> {StackName,
OutputKey}). Run under a Lambda Runtime API with `python -m awslambdaric app.handler`.
"""

import http.client
from urllib.parse import urlsplit

import boto3
import crhelper.utils
from crhelper import CfnResource

helper = CfnResource(json_logging=False, log_level="INFO", boto_level="CRITICAL")

cloudformation = boto3.client("cloudformation")
apigateway = boto3.client("apigateway")


def _output(stack_name, output_key):
    stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    for output in stacks[0].get("Outputs", []):
        if output["OutputKey"] == output_key:
            return output["OutputValue"]
    raise ValueError(f"stack {stack_name} has no output {output_key}")


@helper.create
def create(event, _context):
    props = event["ResourceProperties"]
    api_id = props["RestApiId"]
    stage = props["StageName"]
    variables = {
        name: _output(source["StackName"], source["OutputKey"])
        for name, source in props.get("Variables", {}).items()
    }
    apigateway.create_deployment(restApiId=api_id, stageName=stage, variables=variables)
    helper.Data.update(variables)
    return f"{api_id}/{stage}"


@helper.update
def update(event, context):
    return create(event, context)


@helper.delete
def delete(_event, _context):
    return None


# crhelper always PUTs its response over HTTPS. CloudFormation's ResponseURLs are https://; the
# local bench receives responses on a plain http:// server, so an http:// URL gets a plain
# connection and everything else keeps crhelper's own.
_plain_http = False


def _connection(host, context=None):
    if _plain_http:
        return http.client.HTTPConnection(host)
    return http.client.HTTPSConnection(host, context=context)


crhelper.utils.HTTPSConnection = _connection


def handler(event, context):
    global _plain_http
    _plain_http = urlsplit(event.get("ResponseURL", "")).scheme == "http"
    helper(event, context)
