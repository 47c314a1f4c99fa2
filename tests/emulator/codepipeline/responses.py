"""Wire format of the CodePipeline operations the emulator adds (methods of moto's ``CodePipelineResponse``)."""

from __future__ import annotations

import json

from moto.codepipeline.responses import CodePipelineResponse


def create_custom_action_type(self: CodePipelineResponse) -> str:
    action_type, tags = self.codepipeline_backend.create_custom_action_type(
        category=self._get_param("category"),
        provider=self._get_param("provider"),
        version=self._get_param("version"),
        settings=self._get_param("settings"),
        configuration_properties=self._get_param("configurationProperties"),
        input_artifact_details=self._get_param("inputArtifactDetails"),
        output_artifact_details=self._get_param("outputArtifactDetails"),
        tags=self._get_param("tags"),
    )
    return json.dumps({"actionType": action_type.describe(), "tags": tags})


def delete_custom_action_type(self: CodePipelineResponse) -> str:
    self.codepipeline_backend.delete_custom_action_type(
        self._get_param("category"), self._get_param("provider"), self._get_param("version")
    )
    return ""


def list_action_types(self: CodePipelineResponse) -> str:
    action_types = self.codepipeline_backend.list_action_types(self._get_param("actionOwnerFilter"))
    return json.dumps({"actionTypes": action_types})


def poll_for_jobs(self: CodePipelineResponse) -> str:
    jobs = self.codepipeline_backend.poll_for_jobs(
        self._get_param("actionTypeId"), self._get_param("maxBatchSize"), self._get_param("queryParam")
    )
    return json.dumps({"jobs": [job.to_poll_dict() for job in jobs]})


def acknowledge_job(self: CodePipelineResponse) -> str:
    status = self.codepipeline_backend.acknowledge_job(self._get_param("jobId"), self._get_param("nonce"))
    return json.dumps({"status": status})


def get_job_details(self: CodePipelineResponse) -> str:
    job = self.codepipeline_backend.get_job_details(self._get_param("jobId"))
    return json.dumps({"jobDetails": job.to_details_dict()})


def put_job_success_result(self: CodePipelineResponse) -> str:
    self.codepipeline_backend.put_job_success_result(
        job_id=self._get_param("jobId"),
        current_revision=self._get_param("currentRevision"),
        continuation_token=self._get_param("continuationToken"),
        execution_details=self._get_param("executionDetails"),
        output_variables=self._get_param("outputVariables"),
    )
    return ""


def put_job_failure_result(self: CodePipelineResponse) -> str:
    self.codepipeline_backend.put_job_failure_result(self._get_param("jobId"), self._get_param("failureDetails"))
    return ""


def get_pipeline_state(self: CodePipelineResponse) -> str:
    return json.dumps(self.codepipeline_backend.get_pipeline_state(self._get_param("name")))


def stop_pipeline_execution(self: CodePipelineResponse) -> str:
    execution_id = self.codepipeline_backend.stop_pipeline_execution(
        self._get_param("pipelineName"),
        self._get_param("pipelineExecutionId"),
        self._get_param("abandon", False),
        self._get_param("reason"),
    )
    return json.dumps({"pipelineExecutionId": execution_id})


OPERATIONS = (
    create_custom_action_type,
    delete_custom_action_type,
    list_action_types,
    poll_for_jobs,
    acknowledge_job,
    get_job_details,
    put_job_success_result,
    put_job_failure_result,
    get_pipeline_state,
    stop_pipeline_execution,
)
