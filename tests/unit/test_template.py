"""template.yaml: what the function is given, and what watches it.

cfn-lint and `sam validate` check that the template is well formed; they cannot see a
property put under the wrong key (under `Metadata`, anything goes). These tests read
the template as CloudFormation does and check that the parts the service relies on
are where CloudFormation looks for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    decoded, problems = decode(str(TEMPLATE))
    assert not problems
    assert decoded is not None
    return dict(decoded)


def test_the_function_gets_its_settings_its_rights_and_its_routes(
    template: dict[str, Any],
) -> None:
    function = template["Resources"]["ApiFunction"]
    properties = function["Properties"]
    assert properties["Environment"]["Variables"]["CUSTOMER_STORE"] == "dynamodb"
    assert properties["Environment"]["Variables"]["LOG_LEVEL"] == "INFO"  # the access line
    assert properties["Policies"]
    assert properties["LoggingConfig"]["LogFormat"] == "Text"
    routes = {
        (event["Properties"]["Path"], event["Properties"]["Method"])
        for event in properties["Events"].values()
        if event["Type"] == "HttpApi"
    }
    # `/{proxy+}` does not match the stage's root, where GET / answers.
    assert routes == {("/{proxy+}", "ANY"), ("/", "ANY")}
    assert set(function["Metadata"]) == {"BuildMethod"}


def test_the_api_has_one_named_stage(template: dict[str, Any]) -> None:
    api = template["Resources"]["HttpApi"]["Properties"]
    assert api["StageName"] == {"Ref": "Stage"}
    assert template["Parameters"]["Stage"]["Default"] == "prod"
    assert template["Outputs"]["ApiUrl"]["Value"]["Fn::Sub"].endswith("/${Stage}")


def test_alarms_watch_the_function_the_api_and_the_table(template: dict[str, Any]) -> None:
    alarms = {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    watched = set()
    for properties in alarms.values():
        stats = [properties] + [
            query["MetricStat"]["Metric"]
            for query in properties.get("Metrics", [])
            if "MetricStat" in query
        ]
        watched |= {(s["Namespace"], s["MetricName"]) for s in stats if "MetricName" in s}
        # Each goes to the SNS topic when one is given, going off and clearing.
        for actions in ("AlarmActions", "OKActions"):
            condition, given, _ = properties[actions]["Fn::If"]
            assert condition == "HasAlarmTopic" and given == [{"Ref": "AlarmTopicArn"}]
    assert watched == {
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/ApiGateway", "Count"),
        ("AWS/ApiGateway", "Latency"),
        ("AWS/DynamoDB", "ThrottledRequests"),
        ("AWS/Lambda", "IteratorAge"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
    }
    assert alarms["ApiLatencyP99Alarm"]["ExtendedStatistic"] == "p99"
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""


def test_provisioned_concurrency_is_off_unless_asked_for(template: dict[str, Any]) -> None:
    assert template["Parameters"]["ProvisionedConcurrency"]["Default"] == 0
    properties = template["Resources"]["ApiFunction"]["Properties"]
    condition, _, otherwise = properties["ProvisionedConcurrencyConfig"]["Fn::If"]
    assert condition == "HasProvisionedConcurrency"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert properties["AutoPublishAlias"] == "live"


def test_each_stage_reads_its_own_api_keys(template: dict[str, Any]) -> None:
    """A `staging` stack must not read (or be allowed to read) the keys of `prod`: by default
    the parameter's name follows Stage; the name the function reads is the one it may read."""
    parameter = template["Parameters"]["ApiKeysParameterName"]
    assert parameter["Default"] == ""
    name = {
        "Fn::If": [
            "HasApiKeysParameterName",
            {"Ref": "ApiKeysParameterName"},
            {"Fn::Sub": "/customer-api/${Stage}/api-keys"},
        ]
    }
    properties = template["Resources"]["ApiFunction"]["Properties"]
    assert properties["Environment"]["Variables"]["API_KEYS_SSM_PARAMETER"] == name
    (statement,) = [
        statement
        for policy in properties["Policies"]
        for statement in policy["Statement"]
        if statement["Action"] == "ssm:GetParameter"
    ]
    pattern, names = statement["Resource"]["Fn::Sub"]
    assert pattern.endswith(":parameter${Name}")
    assert names == {"Name": name}


def test_a_second_function_delivers_events_from_the_tables_stream(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    table = resources["CustomersTable"]["Properties"]
    assert table["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    function = resources["DeliveryFunction"]
    properties = function["Properties"]
    assert properties["Handler"] == "customers/aws/stream_handler.handler"
    assert properties["CodeUri"] == resources["ApiFunction"]["Properties"]["CodeUri"]
    (source,) = properties["Events"].values()
    assert source["Type"] == "DynamoDB"
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["MaximumRecordAgeInSeconds"] == 86400
    dead_letters = source["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert dead_letters == {"Fn::GetAtt": ["DeliveryDeadLetters", "Arn"]}
    assert resources["DeliveryDeadLetters"]["Type"] == "AWS::SQS::Queue"
    assert template["Parameters"]["WebhookSecret"]["NoEcho"] is True
    assert template["Parameters"]["EventBusName"]["Default"] == ""
