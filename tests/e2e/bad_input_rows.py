"""The bad-input matrix's rows: action configurations that must be rejected before launch or run literally (run by
test_bad_input_matrix.py and `make faults`, through harness.matrix)."""

from __future__ import annotations

import shlex

from harness.matrix import (
    BUILD_SUCCEEDED,
    FAILED,
    LITERAL,
    REJECTED,
    SUCCEEDED,
    Row,
    RowRun,
    literal_output_artifact,
    marker,
    no_marker,
    output_contains,
    shell_metacharacters,
)


def _working_directory_with_metacharacters(run: RowRun) -> dict[str, str]:
    return {"WorkingDirectory": shell_metacharacters(run), "Command": "pwd"}


def _output_path_with_metacharacters(run: RowRun) -> dict[str, str]:
    path = "out " + shell_metacharacters(run) + ".txt"
    command = f'p={shlex.quote(path)}\nmkdir -p -- "$(dirname -- "$p")"\necho artifact > "$p"'
    return {"OutputArtifactPath": path, "Command": command}


def _command_with_metacharacters(run: RowRun) -> dict[str, str]:
    command = (
        r"""w='it'"'"'s'; echo "quote: $w \"dq\""; echo "subst: $(echo inner) tick: `echo back`"; """
        f"echo semi; echo 'kept: $(touch {marker(run)})'"
    )
    return {"Command": command}


OTHER_ACCOUNT = "111122223333"
SHARED_AMI = "ami-0a11ce5fab1e00001"


def _ami_of_another_owner(run: RowRun) -> dict[str, str]:
    """An AMI shared with this account by another one. moto labels all of its built-in AMIs (Canonical's, SUSE's,
    Red Hat's too) with the owner alias "amazon", so the row registers its own, with no alias."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    account = run.deployment.outputs["state_machine_arn"].split(":")[4]
    backend = ec2_backends[account][run.deployment.cloud.region]
    if SHARED_AMI not in backend.amis:
        source = backend.amis[run.deployment.outputs["image_id"]]
        backend.amis[SHARED_AMI] = Ami(
            backend, SHARED_AMI, source_ami=source, owner_id=OTHER_ACCOUNT, public=True, name="shared-build-image"
        )
    return {"ImageId": SHARED_AMI}


def _rejected(row_id: str, description: str, message: str, output_artifact: bool = False, **config: str) -> Row:
    return Row(
        row_id,
        description,
        FAILED,
        "ConfigurationError",
        message,
        may_launch=False,
        handling=REJECTED,
        configure=lambda run: config,
        output_artifact=output_artifact,
    )


BAD_INPUT_ROWS: list[Row] = [
    _rejected("ami-malformed", "ImageId 'ami-XYZ'", "ImageId 'ami-XYZ' is not an AMI id", ImageId="ami-XYZ"),
    _rejected(
        "ami-unknown",
        "ImageId of an AMI that does not exist",
        "ImageId ami-0123456789abcdef0 does not exist",
        ImageId="ami-0123456789abcdef0",
    ),
    Row(
        "ami-owner-not-allowed",
        f"ImageId shared by account {OTHER_ACCOUNT}, outside allowed_image_owners (amazon, self)",
        FAILED,
        "ConfigurationError",
        f"is owned by {OTHER_ACCOUNT}, which this module does not allow",
        may_launch=False,
        handling=REJECTED,
        configure=_ami_of_another_owner,
    ),
    _rejected(
        "instance-type-not-allowed",
        "InstanceType p4d.24xlarge (outside allowed_instance_types)",
        "InstanceType 'p4d.24xlarge' is not allowed",
        InstanceType="p4d.24xlarge",
    ),
    _rejected(
        "instance-types-one-not-allowed",
        "InstanceType 't4g.micro, p4d.24xlarge': a list whose second type is outside allowed_instance_types",
        "InstanceType 'p4d.24xlarge' is not allowed",
        InstanceType="t4g.micro, p4d.24xlarge",
    ),
    _rejected("command-empty", "Command of blanks", "Command is empty", Command="   "),
    _rejected("timeout-zero", "TimeoutMinutes 0", "TimeoutMinutes '0' is not allowed", TimeoutMinutes="0"),
    _rejected("timeout-above-max", "TimeoutMinutes 481", "TimeoutMinutes '481' is not allowed", TimeoutMinutes="481"),
    _rejected(
        "timeout-not-a-number", "TimeoutMinutes 'ten'", "TimeoutMinutes 'ten' is not allowed", TimeoutMinutes="ten"
    ),
    _rejected(
        "output-path-absolute",
        "OutputArtifactPath '/etc/passwd'",
        "OutputArtifactPath '/etc/passwd' is absolute",
        output_artifact=True,
        OutputArtifactPath="/etc/passwd",
    ),
    _rejected(
        "output-path-dotdot",
        "OutputArtifactPath 'dist/../../secrets'",
        "OutputArtifactPath 'dist/../../secrets' contains a '..' segment",
        output_artifact=True,
        OutputArtifactPath="dist/../../secrets",
    ),
    _rejected(
        "working-directory-newline",
        "WorkingDirectory with a newline",
        "WorkingDirectory contains a line break",
        WorkingDirectory="build\ntouch /tmp/x",
    ),
    _rejected(
        "output-path-newline",
        "OutputArtifactPath with a newline",
        "OutputArtifactPath contains a line break",
        output_artifact=True,
        OutputArtifactPath="dist\ntouch /tmp/x",
    ),
    Row(
        "working-directory-metacharacters",
        "WorkingDirectory with quotes, $(), backticks, a semicolon",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        handling=LITERAL,
        configure=_working_directory_with_metacharacters,
        proof=lambda run, result: output_contains(shell_metacharacters(run))(run, result),
    ),
    Row(
        "output-path-metacharacters",
        "OutputArtifactPath with quotes, $(), backticks, a semicolon",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        handling=LITERAL,
        configure=_output_path_with_metacharacters,
        output_artifact=True,
        proof=lambda run, result: no_marker(run, result) + literal_output_artifact(run, result),
    ),
    Row(
        "command-metacharacters",
        "Command with quotes, $(), backticks, semicolons",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        handling=LITERAL,
        configure=_command_with_metacharacters,
        proof=lambda run, result: output_contains(
            'quote: it\'s "dq"', "subst: inner tick: back", "semi", f"kept: $(touch {marker(run)})"
        )(run, result),
    ),
    Row(
        "command-newlines",
        "Command of several lines (if/fi, printf)",
        SUCCEEDED,
        message=BUILD_SUCCEEDED,
        handling=LITERAL,
        command="echo first\nif true; then\n  echo second\nfi\nprintf '%s\\n' \"third line\"",
        proof=output_contains("first\nsecond\nthird line"),
    ),
]
