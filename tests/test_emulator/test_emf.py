"""Embedded metric format: a Lambda function's EMF output becomes CloudWatch metrics, as CloudWatch Logs makes it."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from emulator import server
from emulator.logs import emf

NAMESPACE = "EmfProbe"
STACK = [{"Name": "Stack", "Value": "demo"}]
STACK_ACTION = [*STACK, {"Name": "Action", "Value": "build"}]
WHEN = dt.datetime(2026, 3, 1, 12, 0, 30, tzinfo=dt.UTC)


def document(timestamp_ms: int, **members: Any) -> dict[str, Any]:
    """A document as aws-lambda-powertools prints it: two dimension sets, a count and a list of latencies."""
    return {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Stack", "Action"], ["Stack"]],
                    "Metrics": [{"Name": "Jobs", "Unit": "Count"}, {"Name": "Latency", "Unit": "Seconds"}],
                }
            ],
        },
        "Stack": "demo",
        "Action": "build",
        "Jobs": 1,
        "Latency": [2.5, 4.0],
        "job_id": "not a dimension",
        **members,
    }


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


# -- extraction rules ------------------------------------------------------------------------------------------------


def test_each_metric_of_each_dimension_set_with_its_unit_values_and_the_document_timestamp() -> None:
    data = emf.extract(json.dumps(document(ms(WHEN))))

    assert [(d.name, d.dimensions, d.unit, d.values) for d in data] == [
        ("Jobs", (("Stack", "demo"), ("Action", "build")), "Count", (1.0,)),
        ("Jobs", (("Stack", "demo"),), "Count", (1.0,)),
        ("Latency", (("Stack", "demo"), ("Action", "build")), "Seconds", (2.5, 4.0)),
        ("Latency", (("Stack", "demo"),), "Seconds", (2.5, 4.0)),
    ]
    assert {d.timestamp for d in data} == {WHEN.replace(tzinfo=None)}
    assert {d.namespace for d in data} == {NAMESPACE}


def test_a_document_after_lambdas_own_metadata_counts_and_other_lines_are_not_emf() -> None:
    prefixed = f"[INFO]\t2026-03-01T12:00:30.000Z\t6f1c\t{json.dumps(document(ms(WHEN)))}"

    assert len(emf.extract(prefixed)) == 4
    assert emf.extract("START RequestId: 6f1c Version: $LATEST") == []
    assert emf.extract(json.dumps({"level": "INFO", "message": "no metrics here"})) == []


def test_a_metric_without_a_unit_is_unit_none_and_storage_resolution_is_kept() -> None:
    doc = document(ms(WHEN))
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"] = [{"Name": "Jobs", "StorageResolution": 1}]

    assert {(d.unit, d.storage_resolution) for d in emf.extract(json.dumps(doc))} == {("None", 1)}


def _broken(change: str) -> dict[str, Any]:
    doc = document(ms(WHEN))
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    if change == "metric is a string":
        doc["Jobs"] = "1"
    elif change == "metric is missing":
        del doc["Jobs"]
    elif change == "dimension is a number":
        doc["Action"] = 7
    elif change == "dimension is missing":
        del doc["Action"]
    elif change == "unit is unknown":
        directive["Metrics"][0]["Unit"] = "Jobs"
    elif change == "101 values":
        doc["Latency"] = [1.0] * 101
    elif change == "no timestamp":
        del doc["_aws"]["Timestamp"]
    elif change == "no namespace":
        del directive["Namespace"]
    elif change == "31 dimension keys":
        directive["Dimensions"] = [[f"D{n}" for n in range(31)]]
        doc |= {f"D{n}": "x" for n in range(31)}
    elif change == "a boolean value":
        doc["Jobs"] = True
    return doc


@pytest.mark.parametrize(
    "change",
    [
        "metric is a string",
        "metric is missing",
        "dimension is a number",
        "dimension is missing",
        "unit is unknown",
        "101 values",
        "no timestamp",
        "no namespace",
        "31 dimension keys",
        "a boolean value",
    ],
)
def test_a_document_that_breaks_the_specification_publishes_nothing(change: str) -> None:
    with pytest.raises(emf.EmfError) as raised:
        emf.extract(json.dumps(_broken(change)))
    assert raised.value.metric == emf.VALIDATION_ERRORS


def test_an_emf_line_that_is_not_json_is_a_parsing_error() -> None:
    with pytest.raises(emf.EmfParsingError):
        emf.extract('{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [')
    with pytest.raises(emf.EmfParsingError):
        emf.extract(json.dumps(document(ms(WHEN))).replace('"Jobs": 1,', '"Jobs": NaN,'))


# -- through a Lambda function in the local cloud -------------------------------------------------------------------

HANDLER = """
import json

def handler(event, context):
    for line in event["lines"]:
        print(line)
    return "printed"
"""


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    cloud = server.start()
    yield cloud
    cloud.stop()


@pytest.fixture(scope="module")
def aws(cloud: server.LocalCloud) -> boto3.Session:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=cloud.region)


@pytest.fixture(scope="module")
def printed(cloud: server.LocalCloud, aws: boto3.Session) -> dt.datetime:
    """The function ran once and printed a valid document, a broken one, a non-JSON one and ordinary lines;
    returns the valid document's time stamp."""
    role = aws.client("iam", endpoint_url=cloud.endpoint).create_role(RoleName="emf", AssumeRolePolicyDocument="{}")
    client = aws.client("lambda", endpoint_url=cloud.endpoint)
    client.create_function(
        FunctionName="emf-probe",
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": HANDLER})},
        Timeout=5,
    )
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    lines = [
        "building",
        json.dumps(document(ms(when))),
        json.dumps(_broken("metric is a string")),
        '{"_aws": {"CloudWatchMetrics": [',
        json.dumps({"level": "INFO", "message": "done"}),
    ]
    response = client.invoke(FunctionName="emf-probe", Payload=json.dumps({"lines": lines}))
    assert "FunctionError" not in response, response["Payload"].read()
    return when


def _statistics(aws: boto3.Session, cloud: server.LocalCloud, name: str, dimensions: list, when: dt.datetime) -> list:
    response = aws.client("cloudwatch", endpoint_url=cloud.endpoint).get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=name,
        Dimensions=dimensions,
        StartTime=when - dt.timedelta(minutes=1),
        EndTime=when + dt.timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount", "Sum", "Minimum", "Maximum"],
    )
    return [{k: v for k, v in p.items() if k != "Timestamp"} for p in response["Datapoints"]]


def test_get_metric_statistics_sees_each_dimension_set_and_every_value(cloud, aws, printed) -> None:
    # The broken document (Jobs "1") published nothing: one job, not two.
    assert _statistics(aws, cloud, "Jobs", STACK_ACTION, printed) == [
        {"SampleCount": 1.0, "Sum": 1.0, "Minimum": 1.0, "Maximum": 1.0, "Unit": "Count"}
    ]
    assert _statistics(aws, cloud, "Latency", STACK, printed) == [
        {"SampleCount": 2.0, "Sum": 6.5, "Minimum": 2.5, "Maximum": 4.0, "Unit": "Seconds"}
    ]


def test_a_metric_is_its_exact_dimension_set(cloud, aws, printed) -> None:
    assert _statistics(aws, cloud, "Jobs", [{"Name": "Action", "Value": "build"}], printed) == []
    assert _statistics(aws, cloud, "Jobs", [], printed) == []


def test_get_metric_data_sees_the_values_at_the_documents_time(cloud, aws, printed) -> None:
    def query(query_id: str, name: str, dimensions: list, stat: str) -> dict[str, Any]:
        metric = {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions}
        return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": 60, "Stat": stat}}

    response = aws.client("cloudwatch", endpoint_url=cloud.endpoint).get_metric_data(
        MetricDataQueries=[
            query("jobs", "Jobs", STACK_ACTION, "Sum"),
            query("slowest", "Latency", STACK_ACTION, "Maximum"),
            query("undimensioned", "Jobs", [], "Sum"),
        ],
        StartTime=printed - dt.timedelta(minutes=5),
        EndTime=printed + dt.timedelta(minutes=5),
    )
    results = {r["Id"]: r for r in response["MetricDataResults"]}

    assert results["jobs"]["Values"] == [1.0]
    assert results["slowest"]["Values"] == [4.0]
    assert results["undimensioned"]["Values"] == []
    # Periods count from StartTime: the document's time starts the sixth one.
    assert [t.timestamp() for t in results["jobs"]["Timestamps"]] == [printed.timestamp()]


def test_broken_documents_are_counted_in_aws_logs_per_log_group(cloud, aws, printed) -> None:
    client = aws.client("cloudwatch", endpoint_url=cloud.endpoint)
    now = dt.datetime.now(dt.UTC)

    def errors(name: str) -> float:
        points = client.get_metric_statistics(
            Namespace="AWS/Logs",
            MetricName=name,
            Dimensions=[{"Name": "LogGroupName", "Value": "/aws/lambda/emf-probe"}],
            StartTime=now - dt.timedelta(minutes=5),
            EndTime=now + dt.timedelta(minutes=1),
            Period=300,
            Statistics=["Sum"],
        )["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert errors("EMFValidationErrors") == 1.0
    assert errors("EMFParsingErrors") == 1.0
