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


# --- Windows and architecture (checked at acquire against the AMI) --------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "runs"),
    [
        ("m6i.large", "x86_64"), ("t3.micro", "x86_64"), ("g4dn.xlarge", "x86_64"), ("m7i-flex.large", "x86_64"),
        ("u-6tb1.metal", "x86_64"), ("inf2.xlarge", "x86_64"),
        ("t4g.micro", "arm64"), ("m7g.large", "arm64"), ("c6gd.xlarge", "arm64"), ("c7gn.large", "arm64"),
        ("x2gd.large", "arm64"), ("is4gen.large", "arm64"), ("im4gn.large", "arm64"), ("g5g.xlarge", "arm64"),
        ("a1.large", "arm64"), ("mac1.metal", "x86_64_mac"), ("mac2-m2pro.metal", "arm64_mac"),
    ],
)  # fmt: skip
def test_an_instance_types_architecture_follows_aws_naming(instance_type: str, runs: str) -> None:
    assert guardrails.instance_architecture(instance_type) == runs


def test_an_instance_type_must_run_the_amis_architecture() -> None:
    guardrails.architecture("m7g.large", "ami-0123abcd", "arm64")
    guardrails.architecture("m6i.large", "ami-0123abcd", "x86_64")
    guardrails.architecture("t3.micro", "ami-0123abcd", "i386")  # 32-bit AMIs run on x86_64 types
    with pytest.raises(Invalid, match=r"^InstanceType 'm6i.large' runs x86_64 but ImageId ami-0123abcd is arm64: "
                                      r"use a Graviton type"):  # fmt: skip
        guardrails.architecture("m6i.large", "ami-0123abcd", "arm64")
    with pytest.raises(Invalid, match=r"^InstanceType 't4g.large' runs arm64 but ImageId ami-0123abcd is x86_64"):
        guardrails.architecture("t4g.large", "ami-0123abcd", "x86_64")


@pytest.mark.parametrize(
    ("instance_type", "gib"),
    [
        ("t3.xlarge", 16), ("t3.2xlarge", 32), ("t2.nano", 0.5), ("c5.2xlarge", 16), ("c5.4xlarge", 32),
        ("m5.xlarge", 16), ("m5.2xlarge", 32), ("r5.large", 16), ("r5.xlarge", 32), ("c3.2xlarge", 15),
        ("m3.medium", 3.75), ("i3.large", 15.25), ("c7i-flex.large", 4), ("m7i.12xlarge", 192), ("m5.metal", None),
        ("x2iedn.large", None),
    ],
)  # fmt: skip
def test_memory_of_the_hibernation_families(instance_type: str, gib: float | None) -> None:
    """AWS's published sizes (e.g. c3.2xlarge 15 GiB, i3.large 15.25 GiB, r5.large 16 GiB)."""
    assert guardrails.memory_gib(instance_type) == gib


def test_windows_hibernates_only_up_to_16_gib() -> None:
    for allowed in ("m5.xlarge", "c5.2xlarge", "r5.large", "t3.xlarge", "i3.large"):
        guardrails.windows_hibernation(allowed, "ami-0123abcd", "Windows_Server-2022-English-Full-Base", "2025-01-15")
    with pytest.raises(Invalid, match=r"^InstanceType 'm5.2xlarge' has 32 GiB of memory: .* at most 16 GiB"):
        guardrails.windows_hibernation("m5.2xlarge", "ami-0123abcd", "Windows_Server-2022", "2025-01-15")
    with pytest.raises(Invalid, match=r"^InstanceType 'm5.metal' is not known here to have at most 16 GiB"):
        guardrails.windows_hibernation("m5.metal", "ami-0123abcd", "Windows_Server-2022", "2025-01-15")


def test_windows_hibernates_only_from_amis_aws_supports() -> None:
    """Windows Server 2022 AMIs from 2023-09-13, other versions from 2019-09-11 (AWS's hibernation prerequisites)."""
    guardrails.windows_hibernation("m5.large", "ami-0123abcd", "Windows_Server-2022-x", "2023-09-13T00:00:00.000Z")
    guardrails.windows_hibernation("m5.large", "ami-0123abcd", "Windows_Server-2019-x", "2020-01-01T00:00:00.000Z")
    with pytest.raises(Invalid, match=r"^ImageId ami-0123abcd was created on 2023-09-12: .*Windows Server 2022 needs "
                                      r"an AMI from 2023-09-13 or later"):  # fmt: skip
        guardrails.windows_hibernation("m5.large", "ami-0123abcd", "Windows_Server-2022-x", "2023-09-12T23:00:00Z")
    with pytest.raises(Invalid, match=r"created on 2019-09-10: .* from 2019-09-11 or later"):
        guardrails.windows_hibernation("m5.large", "ami-0123abcd", "my-windows-image", "2019-09-10T00:00:00Z")


def test_windows_root_volume_leaves_room_for_container_images() -> None:
    assert guardrails.windows_root_volume_gib(50) == 50
    with pytest.raises(Invalid, match=r"^RootVolumeGiB 30 is too small for a Windows build: use at least 50"):
        guardrails.windows_root_volume_gib(30)
