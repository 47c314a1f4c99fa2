"""The example's own source through a real pipeline job, zipped with its Unix modes as a source action zips a checkout.

The build runs `./build.sh` itself (no `bash build.sh`): that needs its exec bit from the source zip, through the
input artifact's unzip; `hello.sh` keeps its own through the build's copy and the output artifact's zip.
"""

from __future__ import annotations

import io
import stat
import zipfile

import pytest

from harness.deployment import EXAMPLE, Deployment, unique_name, zip_tree

pytestmark = pytest.mark.e2e


def test_an_executable_build_script_in_the_source_runs_and_the_output_keeps_modes(deployment: Deployment) -> None:
    configuration = {
        "ImageId": deployment.outputs["image_id"],
        "InstanceType": "t4g.micro",
        "Command": "./build.sh",
        "OutputArtifactPath": "dist",
    }
    pipeline = deployment.create_pipeline(unique_name("modes"), configuration)

    run = deployment.run(pipeline, zip_tree(EXAMPLE / "source"))

    assert run.status == "Succeeded", run.final_result
    with zipfile.ZipFile(io.BytesIO(deployment.output_artifact_zip(run))) as archive:
        modes = {info.filename: stat.filemode(info.external_attr >> 16) for info in archive.infolist()}
    assert modes["app/"] == "drwxr-xr-x"
    assert modes["app/hello.sh"] == "-rwxr-xr-x"
    assert modes["build-info.txt"] == "-rw-r--r--"
