"""ec2_action.log: one JSON object per line on stdout, the invocation's and the job's keys on each, secrets redacted,
botocore's warnings in the same format."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from ec2_action import log


@pytest.fixture(autouse=True)
def fresh_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as a new execution environment would: cold, nothing bound, no trace id."""
    monkeypatch.setattr(log, "_warm", False)
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    log.start(None)


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every line written since the last read; each must be a JSON object."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def context(request_id: str) -> SimpleNamespace:
    return SimpleNamespace(aws_request_id=request_id, function_name="stack-poll")


def test_a_line_says_what_where_when_and_which_function(capsys: pytest.CaptureFixture[str]) -> None:
    log.info("job queued", entry="0001", waited_seconds=3)

    [line] = lines(capsys)
    assert list(line)[:5] == ["level", "message", "timestamp", "service", "location"]
    assert line["level"] == "INFO" and line["message"] == "job queued"
    assert line["entry"] == "0001" and line["waited_seconds"] == 3
    assert line["timestamp"].endswith("+00:00")
    assert line["location"].startswith("test_log.test_a_line_says_what_where_when_and_which_function:")
    assert "cold_start" not in line and "function_request_id" not in line and "xray_trace_id" not in line


def test_the_invocation_keys_stay_across_resets_and_the_job_keys_do_not(capsys: pytest.CaptureFixture[str]) -> None:
    log.start(context("request-1"), job_id="job-1")
    log.bind(execution_arn="arn:execution:1", ignored=None)
    log.info("first")
    log.reset(pool="linux")
    log.warning("second")
    log.start(context("request-2"), job_id="job-2")
    log.error("third")

    first, second, third = lines(capsys)
    assert (first["cold_start"], first["function_request_id"]) == (True, "request-1")
    assert first["job_id"] == "job-1" and first["execution_arn"] == "arn:execution:1" and "ignored" not in first
    assert (second["cold_start"], second["function_request_id"], second["pool"]) == (True, "request-1", "linux")
    assert "job_id" not in second and "execution_arn" not in second
    assert (third["cold_start"], third["function_request_id"], third["job_id"]) == (False, "request-2", "job-2")
    assert [line["level"] for line in (first, second, third)] == ["INFO", "WARNING", "ERROR"]


def test_provisioned_concurrency_is_never_a_cold_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    log.start(context("request-1"))
    log.info("warm already")

    assert lines(capsys)[0]["cold_start"] is False


def test_the_xray_trace_id_is_the_root_of_lambdas_trace_header(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1")
    log.info("traced")

    assert lines(capsys)[0]["xray_trace_id"] == "1-67891233-abcdef012345678912345678"


def test_credentials_are_redacted_wherever_they_appear(capsys: pytest.CaptureFixture[str]) -> None:
    log.bind(task_token="token-bound")
    log.info(
        "job",
        job={"id": "j", "artifactCredentials": {"secretAccessKey": "s3cret"}},
        attempts=[{"sessionToken": "session-1", "step": "acquire"}],
    )

    text = capsys.readouterr().out
    assert "token-bound" not in text and "s3cret" not in text and "session-1" not in text
    [line] = [json.loads(text)]
    assert line["task_token"] == "[redacted]"
    assert line["job"] == {"id": "j", "artifactCredentials": "[redacted]"}
    assert line["attempts"] == [{"sessionToken": "[redacted]", "step": "acquire"}]


def test_redact_leaves_other_values_alone() -> None:
    value = {"accessKeyId": "AKIA", "nested": ({"keep": 1, "sessionToken": "x"},), "text": "plain"}
    assert log.redact(value) == {"accessKeyId": "[redacted]", "nested": [{"keep": 1, "sessionToken": "[redacted]"}],
                                 "text": "plain"}  # fmt: skip


def test_a_field_named_like_a_logging_record_attribute_is_kept_under_another_name(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.bind(name="bound")
    log.info("odd names", module="given", args=["a"])

    [line] = lines(capsys)
    assert line["message"] == "odd names"
    assert (line["name_"], line["module_"], line["args_"]) == ("bound", "given", ["a"])


def test_a_message_that_looks_like_json_stays_text(capsys: pytest.CaptureFixture[str]) -> None:
    log.info("42")
    log.info('{"not": "parsed"}')

    assert [line["message"] for line in lines(capsys)] == ["42", '{"not": "parsed"}']


def test_botocore_warnings_go_through_the_same_formatter_and_its_chatter_does_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log.start(context("request-1"), job_id="job-1")
    botocore_logger = logging.getLogger("botocore.retries.standard")
    botocore_logger.debug("retrying")
    botocore_logger.info("retry quota")
    botocore_logger.warning("gave up after %d attempts", 3)

    [line] = lines(capsys)
    assert line["level"] == "WARNING" and line["message"] == "gave up after 3 attempts"
    assert line["job_id"] == "job-1" and line["function_request_id"] == "request-1"


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_lines_are_not_repeated_by_the_runtimes_root_handler(capsys: pytest.CaptureFixture[str]) -> None:
    runtime = Collected()  # the Lambda runtime's own handler on the root logger (plain text, request id first)
    logging.getLogger().addHandler(runtime)
    try:
        log.error("once")
        logging.getLogger("botocore.endpoint").warning("once too")
    finally:
        logging.getLogger().removeHandler(runtime)
    assert runtime.records == []
    assert [line["message"] for line in lines(capsys)] == ["once", "once too"]
