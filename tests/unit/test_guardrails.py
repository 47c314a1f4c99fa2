import pytest

from ec2_action import guardrails
from ec2_action.guardrails import Invalid


@pytest.mark.parametrize("value", ["ami-0123abcd", "ami-0123456789abcdef0"])
def test_ami_ids_of_both_lengths_pass(value: str) -> None:
    assert guardrails.image_id(value) == value


@pytest.mark.parametrize(
    "value", ["ami-123", "ami-0123456789ABCDEF0", "ami-0123abcd; rm -rf /", "ubuntu", " ami-0123abcd"]
)
def test_malformed_ami_ids_are_named_and_explained(value: str) -> None:
    with pytest.raises(Invalid, match=r"^ImageId .*8 or 17 hex digits"):
        guardrails.image_id(value)


def test_missing_ami_says_where_to_set_it() -> None:
    with pytest.raises(Invalid, match=r"ImageId is missing.*default"):
        guardrails.image_id("")


def test_instance_type_allow_list_uses_globs() -> None:
    allowed = ("t3.*", "m6i.large")
    assert guardrails.instance_types("t3.2xlarge", allowed) == ["t3.2xlarge"]
    assert guardrails.instance_types("m6i.large", allowed) == ["m6i.large"]
    with pytest.raises(
        Invalid, match=r"InstanceType 'm6i.xlarge' is not allowed: this module allows t3\.\*, m6i.large"
    ):
        guardrails.instance_types("m6i.xlarge", allowed)
    with pytest.raises(Invalid, match=r"InstanceType 't3a.large'"):
        guardrails.instance_types("t3a.large", allowed)


def test_an_instance_type_list_is_split_stripped_and_deduplicated_in_order() -> None:
    assert guardrails.instance_type_list(" m6i.large,t3.large , m6i.large,,") == ("m6i.large", "t3.large")
    assert guardrails.instance_types(("t3.large", "t3.xlarge", "t3.large"), ("t3.*",)) == ["t3.large", "t3.xlarge"]
    with pytest.raises(Invalid, match=r"InstanceType is missing"):
        guardrails.instance_types(" , ", ("t3.*",))
    with pytest.raises(Invalid, match=r"InstanceType 'm6i.large', 'c7g.large' are not allowed"):
        guardrails.instance_types("t3.large,m6i.large,c7g.large", ("t3.*",))


@pytest.mark.parametrize("value", ["0", "481", "-5", "1.5", "ten", ""])
def test_timeout_outside_range_names_the_range(value: str) -> None:
    with pytest.raises(Invalid, match=r"TimeoutMinutes .*whole number of minutes from 1 to 480"):
        guardrails.timeout_minutes(value, 480)


def test_timeout_in_range_is_an_int() -> None:
    assert guardrails.timeout_minutes("480", 480) == 480
    assert guardrails.timeout_minutes(" 15 ", 480) == 15


@pytest.mark.parametrize(("value", "ok"), [("8", True), ("16384", True), ("7", False), ("16385", False)])
def test_root_volume_range(value: str, ok: bool) -> None:
    if ok:
        assert guardrails.root_volume_gib(value) == int(value)
    else:
        with pytest.raises(Invalid, match=r"RootVolumeGiB .*from 8 to 16384"):
            guardrails.root_volume_gib(value)


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_empty_command_is_rejected(value: str) -> None:
    with pytest.raises(Invalid, match=r"Command is empty"):
        guardrails.command(value)


def test_overlong_command_is_rejected_with_the_limit() -> None:
    with pytest.raises(Invalid, match=r"Command is 1001 characters long: at most 1000"):
        guardrails.command("x" * 1001)


@pytest.mark.parametrize("value", ["dist", "build/out.zip", "./dist", "a/b\\c", "..dist", "dist.."])
def test_relative_output_paths_pass(value: str) -> None:
    assert guardrails.relative_path("OutputArtifactPath", value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("/etc", "is absolute"),
        ("\\Windows", "is absolute"),
        ("C:\\out", "is absolute"),
        ("c:out", "is absolute"),
        ("../secrets", "'..' segment"),
        ("out/../../x", "'..' segment"),
        ("out\\..\\x", "'..' segment"),
        ("out\nrm", "line break or NUL"),
        ("out\x00", "line break or NUL"),
    ],
)
def test_unsafe_output_paths_are_named_and_explained(value: str, why: str) -> None:
    with pytest.raises(Invalid, match=rf"^OutputArtifactPath .*{why}"):
        guardrails.relative_path("OutputArtifactPath", value)


def test_working_directory_may_be_absolute_but_single_line() -> None:
    assert guardrails.single_line("WorkingDirectory", "/opt/src") == "/opt/src"
    with pytest.raises(Invalid, match=r"^WorkingDirectory contains a line break"):
        guardrails.single_line("WorkingDirectory", "/opt\r\nsrc")
