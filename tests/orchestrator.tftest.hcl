# The orchestrator module on its own, planned against a mocked provider: IAM scoping, the rendered state machine,
# the functions' configuration and the event rules. Data sources and the functions' ARNs are fixed so that the
# assertions can compare exact strings.

mock_provider "aws" {
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { id = "eu-west-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

override_resource {
  target          = aws_lambda_function.this["acquire"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-acquire" }
}

override_resource {
  target          = aws_lambda_function.this["wait_online"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-wait-online" }
}

override_resource {
  target          = aws_lambda_function.this["run_command"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-run-command" }
}

override_resource {
  target          = aws_lambda_function.this["release"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-release" }
}

override_resource {
  target          = aws_lambda_function.this["report"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-report" }
}

override_resource {
  target          = aws_lambda_function.this["enqueue"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-enqueue" }
}

override_resource {
  target          = aws_lambda_function.this["interruption"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-interruption" }
}

override_resource {
  target          = aws_lambda_function.this["keeper"]
  override_during = plan
  values          = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-keeper" }
}

variables {
  name_prefix = "ci-build"
  actions = {
    linux = {
      category              = "Build"
      provider              = "EC2-Linux"
      versions              = ["1"]
      image_id              = null
      instance_type         = "t3.large"
      timeout_minutes       = 60
      root_volume_size_gib  = 30
      strategy              = "ephemeral"
      max_concurrent_builds = 10
      pool = {
        min_ready        = 0, schedule = [], timezone = "UTC", hibernate = false, max_builds = 50, max_age_hours = 168,
        max_idle_minutes = 10, reset_command = ""
      }
      instance_types                 = ["m5.large", "t3.xlarge"]
      purchase_option                = "spot-then-on-demand"
      allocation_strategy            = null
      interruptions_before_on_demand = 1
    }
    windows = {
      category              = "Build"
      provider              = "EC2-Windows"
      versions              = ["3", "2"]
      image_id              = "ami-0123456789abcdef0"
      instance_type         = "m5.large"
      timeout_minutes       = 120
      root_volume_size_gib  = 100
      strategy              = "stopped"
      max_concurrent_builds = 4
      pool = {
        min_ready     = 1
        schedule      = [{ days = ["Mon", "Tue", "Wed", "Thu", "Fri"], from_hour = 7, to_hour = 19, min_ready = 3 }]
        timezone      = "Europe/Paris", hibernate = true, max_builds = 20, max_age_hours = 72, max_idle_minutes = 30
        reset_command = "docker image prune -f"
      }
      instance_types                 = []
      purchase_option                = "on-demand"
      allocation_strategy            = "lowest-price"
      interruptions_before_on_demand = 2
    }
  }
  subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  security_group_ids = ["sg-0123456789abcdef0"]
  launch_templates = {
    Linux   = { id = "lt-0123456789abcdef0", arn = "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0", version = "3" }
    Windows = { id = "lt-0123456789abcdef1", arn = "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef1", version = "1" }
  }
  builder_role_arn                 = "arn:aws:iam::123456789012:role/ci-build-builder"
  document_name                    = "ci-build-run-build"
  document_arn                     = "arn:aws:ssm:eu-west-1:123456789012:document/ci-build-run-build"
  build_log_group_name             = "/ci-build/builds"
  allowed_image_ids                = []
  allowed_image_owners             = ["amazon", "self"]
  allowed_instance_types           = ["t3.*", "m5.*"]
  default_build_timeout_minutes    = 60
  max_build_timeout_minutes        = 480
  root_volume_size_gib             = 50
  ssm_registration_timeout_minutes = 15
  job_sweep_schedule_expression    = "rate(1 minute)"
  reaper_schedule_expression       = "rate(5 minutes)"
  pool_keeper_schedule_expression  = "rate(1 minute)"
  orphan_grace_minutes             = 30
  log_retention_days               = 30
  log_kms_key_arn                  = null
  lambda_runtime                   = "python3.12"
  lambda_zip_path                  = "lambda_src/dist/ec2_action.zip"
  lambda_layer_zip_path            = "lambda_src/dist/dependencies_layer.zip"
  tracing_enabled                  = false
  permissions_boundary_arn         = null
  tags                             = { Team = "platform" }
}

run "iam_is_scoped_to_this_stack" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  # Terminating, starting and stopping instances: only on instances tagged with this stack, and each only by the
  # functions that need it (acquire terminates a stopped member that cannot start; release and keeper stop a stopped
  # pool's members; only acquire starts them).
  assert {
    condition = alltrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement :
        statement.Resource == ["arn:aws:ec2:eu-west-1:123456789012:instance/*"] &&
        statement.Condition == { StringEquals = { "ec2:ResourceTag/ec2-action:stack" = "ci-build" } }
        if anytrue([for action in flatten([statement.Action]) : contains(["ec2:TerminateInstances", "ec2:StartInstances", "ec2:StopInstances"], action)])
      ]
    ]))
    error_message = "A function may terminate, start or stop instances without the ec2-action:stack tag condition."
  }
  assert {
    condition = {
      for action in ["TerminateInstances", "StartInstances", "StopInstances"] : action => join(",", sort([
        for key, policy in output.lambda_policies : key
        if strcontains(policy, "ec2:${action}") || strcontains(policy, "ec2:*")
      ]))
      } == {
      TerminateInstances = "acquire,keeper,reap,release"
      StartInstances     = "acquire"
      StopInstances      = "keeper,release"
    }
    error_message = "Only acquire, keeper, reap and release may terminate instances, only acquire start them, only keeper and release stop them."
  }

  # Launching: acquire for a job, keeper for a pool's minimum, with the same statements; nobody else.
  assert {
    condition = (
      join(",", sort([for key, policy in output.lambda_policies : key if strcontains(policy, "ec2:RunInstances")])) == "acquire,keeper" &&
      jsonencode([
        for statement in jsondecode(output.lambda_policies.keeper).Statement : statement
        if anytrue([for action in flatten([statement.Action]) : contains(["ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"], action)])
        ]) == jsonencode([
        for statement in jsondecode(output.lambda_policies.acquire).Statement : statement
        if anytrue([for action in flatten([statement.Action]) : contains(["ec2:RunInstances", "ec2:CreateTags", "iam:PassRole"], action)])
      ])
    )
    error_message = "Only acquire and keeper may launch instances, and the keeper exactly as acquire does (images, network, tags at launch, the builder role)."
  }

  # Images only of the allowed owners, "self" being this account.
  assert {
    condition = anytrue([
      for statement in jsondecode(output.lambda_policies["acquire"]).Statement :
      try(statement.Condition.StringEquals["ec2:Owner"], []) == ["amazon", "123456789012"]
      if contains(flatten([statement.Resource]), "arn:aws:ec2:eu-west-1::image/*")
    ])
    error_message = "acquire may launch images of owners outside allowed_image_owners."
  }

  # PassRole only for the builder role, only to EC2, only by the functions that launch (acquire, keeper).
  assert {
    condition = alltrue(flatten([
      for key in ["acquire", "keeper"] : [
        for statement in jsondecode(output.lambda_policies[key]).Statement :
        statement.Resource == ["arn:aws:iam::123456789012:role/ci-build-builder"] &&
        try(statement.Condition.StringEquals["iam:PassedToService"], null) == "ec2.amazonaws.com"
        if contains(flatten([statement.Action]), "iam:PassRole")
      ]
    ]))
    error_message = "acquire or keeper may pass a role other than the builder role, or to a service other than EC2."
  }
  assert {
    condition     = join(",", sort([for key, policy in output.lambda_policies : key if strcontains(policy, "iam:")])) == "acquire,keeper"
    error_message = "Only acquire and keeper may use IAM actions."
  }

  # RunInstances creates instances, volumes and network interfaces only with the stack tag in the request (the
  # keeper's statements are acquire's: asserted above).
  assert {
    condition = length([
      for statement in jsondecode(output.lambda_policies.acquire).Statement : statement
      if contains(flatten([statement.Action]), "ec2:RunInstances") && anytrue([
        for resource in flatten([statement.Resource]) : can(regex(":(instance|volume|network-interface)/", resource))
      ])
      ]) == 3 && alltrue([
      for statement in jsondecode(output.lambda_policies.acquire).Statement :
      try(statement.Condition.StringEquals["aws:RequestTag/ec2-action:stack"], null) == "ci-build"
      if contains(flatten([statement.Action]), "ec2:RunInstances") && anytrue([
        for resource in flatten([statement.Resource]) : can(regex(":(instance|volume|network-interface)/", resource))
      ])
    ])
    error_message = "RunInstances may create an instance, volume or network interface without the ec2-action:stack request tag."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.acquire).Statement :
      try(statement.Condition.ArnEquals["ec2:LaunchTemplate"], null) == [
        "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0",
        "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef1",
      ]
      if anytrue([for action in flatten([statement.Action]) : contains(["ec2:RunInstances", "ec2:CreateFleet"], action)]) &&
      anytrue([for resource in flatten([statement.Resource]) : endswith(resource, ":instance/*")])
    ])
    error_message = "RunInstances or CreateFleet may launch instances without one of this stack's launch templates."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.acquire).Statement :
      try(statement.Condition.Bool["ec2:Encrypted"], null) == "true"
      if contains(flatten([statement.Action]), "ec2:RunInstances") && anytrue([for resource in flatten([statement.Resource]) : endswith(resource, ":volume/*")])
    ])
    error_message = "RunInstances may create unencrypted volumes."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.acquire).Statement :
      try(statement.Condition.StringEquals["ec2:CreateAction"], null) == ["RunInstances", "CreateFleet"]
      if contains(flatten([statement.Action]), "ec2:CreateTags")
    ])
    error_message = "acquire may tag existing resources (CreateTags is for launches only)."
  }
  assert {
    condition = !anytrue([
      for statement in jsondecode(output.lambda_policies.acquire).Statement :
      anytrue([for resource in flatten([statement.Resource]) : strcontains(resource, "key-pair")])
    ])
    error_message = "acquire may launch with a key pair; builders are reached through SSM only."
  }

  # PollForJobs only on this stack's action types.
  assert {
    condition = jsonencode([
      for statement in jsondecode(output.lambda_policies.poll).Statement : sort(statement.Resource)
      if contains(flatten([statement.Action]), "codepipeline:PollForJobs")
      ]) == jsonencode([[
        "arn:aws:codepipeline:eu-west-1:123456789012:actiontype:Custom/Build/EC2-Linux/1",
        "arn:aws:codepipeline:eu-west-1:123456789012:actiontype:Custom/Build/EC2-Windows/2",
        "arn:aws:codepipeline:eu-west-1:123456789012:actiontype:Custom/Build/EC2-Windows/3",
    ]])
    error_message = "PollForJobs is not limited to this stack's action types."
  }

  # SendCommand only with this stack's document on this stack's instances.
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.run_command).Statement :
      statement.Resource == ["arn:aws:ssm:eu-west-1:123456789012:document/ci-build-run-build"] ||
      try(statement.Condition.StringEquals["ssm:resourceTag/ec2-action:stack"], null) == "ci-build"
      if contains(flatten([statement.Action]), "ssm:SendCommand")
    ])
    error_message = "run_command may send commands with another document or to instances of another stack."
  }

  # Task tokens and executions only of this stack's state machine.
  assert {
    condition = alltrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement :
        statement.Resource == (flatten([statement.Action]) == ["states:DescribeExecution"] ?
          ["arn:aws:states:eu-west-1:123456789012:execution:ci-build-job:*"] :
        ["arn:aws:states:eu-west-1:123456789012:stateMachine:ci-build-job"])
        if anytrue([for action in flatten([statement.Action]) : startswith(action, "states:")])
      ]
    ]))
    error_message = "A function may act on another state machine."
  }

  # Each function logs to its own group only; DynamoDB only on the jobs table.
  assert {
    condition = alltrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement :
        statement.Resource == ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/ci-build-${replace(key, "_", "-")}:*"]
        if contains(flatten([statement.Action]), "logs:PutLogEvents")
      ]
    ]))
    error_message = "A function may write to a log group other than its own."
  }
  # Build output is read by the functions that read a command's outcome only, from the build log group's streams only.
  assert {
    condition = jsonencode({
      for key, policy in output.lambda_policies : key => flatten([
        for statement in jsondecode(policy).Statement : statement.Resource
        if anytrue([for action in flatten([statement.Action]) : startswith(action, "logs:Get")])
      ]) if strcontains(policy, "logs:Get")
      }) == jsonencode({
      command_event = ["arn:aws:logs:eu-west-1:123456789012:log-group:/ci-build/builds:log-stream:*"]
      interruption  = ["arn:aws:logs:eu-west-1:123456789012:log-group:/ci-build/builds:log-stream:*"]
      poll          = ["arn:aws:logs:eu-west-1:123456789012:log-group:/ci-build/builds:log-stream:*"]
    })
    error_message = "Build output may be read by other functions, or from other log groups."
  }
  assert {
    condition = alltrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement :
        contains([
          ["arn:aws:dynamodb:eu-west-1:123456789012:table/ci-build-jobs"],
          ["arn:aws:dynamodb:eu-west-1:123456789012:table/ci-build-pool"],
        ], statement.Resource)
        if anytrue([for action in flatten([statement.Action]) : startswith(action, "dynamodb:")])
      ]
    ]))
    error_message = "A function may use a DynamoDB table other than the jobs table and the registry, or both in one statement."
  }
  # The registry (instances, leases, the queue): item calls only, no Scan, and only for the functions that take,
  # return, queue, keep or reap capacity; the reaper never creates a record; interruption only reads a member.
  assert {
    condition = jsonencode({
      for key, policy in output.lambda_policies : key => sort(flatten([
        for statement in jsondecode(policy).Statement : statement.Action
        if statement.Resource == ["arn:aws:dynamodb:eu-west-1:123456789012:table/ci-build-pool"]
      ])) if strcontains(policy, "table/ci-build-pool")
      }) == jsonencode(merge({
        for key in ["acquire", "enqueue", "keeper", "reap", "release"] : key => sort(concat(
          ["dynamodb:ConditionCheckItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"],
          key == "reap" ? [] : ["dynamodb:PutItem"],
        ))
    }, { interruption = ["dynamodb:GetItem"] }))
    error_message = "The registry's calls are not exactly acquire's, enqueue's, keeper's, release's (item calls, no Scan), reap's (the same without PutItem) and interruption's (GetItem)."
  }
  # wait_online reads and writes the learned registration times only (items registration#<ami>#<type>), never a job.
  assert {
    condition = jsonencode([
      for statement in jsondecode(output.lambda_policies.wait_online).Statement : {
        actions   = sort(flatten([statement.Action]))
        condition = try(statement.Condition, null)
      }
      if anytrue([for action in flatten([statement.Action]) : startswith(action, "dynamodb:")])
      ]) == jsonencode([{
        actions   = ["dynamodb:GetItem", "dynamodb:PutItem"]
        condition = { "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["registration#*"] } }
    }])
    error_message = "wait_online may use DynamoDB beyond GetItem and PutItem of the registration# items."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.report).Statement :
      statement.Resource == ["arn:aws:lambda:eu-west-1:123456789012:function:ci-build-poll"]
      if contains(flatten([statement.Action]), "lambda:InvokeFunction")
    ])
    error_message = "report may invoke a function other than poll."
  }
  assert {
    condition = {
      for key, policy in output.lambda_policies : key => flatten([
        for statement in jsondecode(policy).Statement : statement.Resource
        if contains(flatten([statement.Action]), "lambda:InvokeFunction")
      ]) if strcontains(policy, "lambda:")
      } == {
      release = ["arn:aws:lambda:eu-west-1:123456789012:function:ci-build-keeper"]
      report  = ["arn:aws:lambda:eu-west-1:123456789012:function:ci-build-poll"]
    }
    error_message = "Only report may invoke a function (poll) and release another (the keeper's nudge)."
  }
  # Task tokens: the queue's (enqueue, release and keeper grant or expire a wait), the build's (command_event and the
  # sweep resume it; interruption resumes it with a result that came first, or fails it).
  assert {
    condition = jsonencode({
      for key, policy in output.lambda_policies : key => sort(flatten([
        for statement in jsondecode(policy).Statement : [
          for action in flatten([statement.Action]) : action if startswith(action, "states:SendTask")
        ]
      ])) if strcontains(policy, "states:SendTask")
      }) == jsonencode({
      command_event = ["states:SendTaskSuccess"]
      enqueue       = ["states:SendTaskFailure", "states:SendTaskSuccess"]
      interruption  = ["states:SendTaskFailure", "states:SendTaskSuccess"]
      keeper        = ["states:SendTaskFailure", "states:SendTaskSuccess"]
      poll          = ["states:SendTaskSuccess"]
      release       = ["states:SendTaskFailure", "states:SendTaskSuccess"]
    })
    error_message = "Task tokens are answered by other functions than command_event, poll (success) and enqueue, interruption, keeper, release (success and failure)."
  }
  # SSM and EC2 health reads: wait_online's, the keeper's and acquire's (a leased warm member).
  assert {
    condition     = join(",", sort([for key, policy in output.lambda_policies : key if strcontains(policy, "ssm:DescribeInstanceInformation")])) == "acquire,keeper,wait_online"
    error_message = "Only acquire, wait_online and keeper read the SSM Agent's health."
  }

  # No wildcard actions anywhere; "*" resources only for the actions that support nothing narrower.
  assert {
    condition = !anytrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement : [
          for action in flatten([statement.Action]) : endswith(action, ":*") || action == "*"
        ]
      ]
    ]))
    error_message = "A policy grants a service-wide wildcard action."
  }
  assert {
    condition = alltrue(flatten([
      for key, policy in output.lambda_policies : [
        for statement in jsondecode(policy).Statement : alltrue([
          for action in flatten([statement.Action]) : contains([
            "xray:PutTraceSegments", "xray:PutTelemetryRecords",
            "codepipeline:AcknowledgeJob", "codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult",
            "ssm:GetCommandInvocation", "ssm:ListCommands", "ssm:CancelCommand",
            "ssm:DescribeInstanceInformation",
            "ec2:DescribeImages", "ec2:DescribeInstances",
          ], action)
        ])
        if contains(flatten([statement.Resource]), "*")
      ]
    ]))
    error_message = "A policy grants Resource \"*\" to an action that supports resource-level permissions."
  }
}

run "state_machine_renders_valid_json_naming_our_functions" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  assert {
    condition     = jsondecode(aws_sfn_state_machine.job.definition).StartAt == "AcquireInstance"
    error_message = "The rendered definition is not the job state machine, or does not start by acquiring the instance."
  }
  assert {
    condition = [
      for state in ["AcquireInstance", "WaitForSsmOnline", "ReleaseInstance", "ReportResult"] :
      jsondecode(aws_sfn_state_machine.job.definition).States[state].Resource
      ] == [
      "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-acquire",
      "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-wait-online",
      "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-release",
      "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-report",
    ]
    error_message = "A task state does not name its function."
  }
  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.job.definition).States.RunBuildCommand.Resource == "arn:aws:states:::lambda:invoke.waitForTaskToken" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.RunBuildCommand.Parameters.FunctionName == "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-run-command"
    )
    error_message = "RunBuildCommand does not invoke run_command with a task token."
  }
  # Every Task state, by the function it invokes: the five steps, nothing else.
  assert {
    condition = sort([
      for name, state in jsondecode(aws_sfn_state_machine.job.definition).States :
      "${name}=${try(state.Parameters.FunctionName, state.Resource)}" if state.Type == "Task"
      ]) == tolist([
      "AcquireInstance=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-acquire",
      "ReleaseInstance=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-release",
      "ReportResult=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-report",
      "RunBuildCommand=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-run-command",
      "WaitForCapacity=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-enqueue",
      "WaitForSsmOnline=arn:aws:lambda:eu-west-1:123456789012:function:ci-build-wait-online",
    ])
    error_message = "The state machine's Task states are not exactly acquire, enqueue, wait_online, run_command, release and report."
  }
  # No capacity: the job waits in the queue with a task token (enqueue stores it), bounded by its build timeout, then
  # acquires again; neither its timeout nor the keeper's CapacityTimeout nor the drain's StackDestroyed (terraform
  # destroy) is retried.
  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.job.definition).States.AcquireInstance.Next == "HasCapacity" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.AcquireInstance.Parameters == { "state.$" = "$", "execution_arn.$" = "$$.Execution.Id" } &&
      jsondecode(aws_sfn_state_machine.job.definition).States.HasCapacity.Default == "WaitForSsmOnline" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.HasCapacity.Choices[0].Next == "WaitForCapacity" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForCapacity.Resource == "arn:aws:states:::lambda:invoke.waitForTaskToken" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForCapacity.TimeoutSecondsPath == "$.build.task_timeout_seconds" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForCapacity.ResultPath == "$.grant" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForCapacity.Next == "AcquireInstance" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForCapacity.Retry[0] == { ErrorEquals = ["States.Timeout", "CapacityTimeout", "StackDestroyed"], MaxAttempts = 0 } &&
      contains(jsondecode(aws_sfn_state_machine.job.definition).States.AcquireInstance.Retry[0].ErrorEquals, "CapacityTimeout") &&
      jsondecode(aws_sfn_state_machine.job.definition).States.AcquireInstance.Retry[0].MaxAttempts == 0
    )
    error_message = "A job without capacity must wait in WaitForCapacity (enqueue, task token, its build timeout, result in $.grant) and acquire again, never retrying a capacity timeout or a destroyed stack."
  }
  # Waiting for SSM happens inside wait_online (waiting is no error): a registration that outlasts the window
  # (InstanceNotReady) or an instance that went away (InstanceLost) ends the build at once, never retried; a wait
  # longer than one invocation goes on through IsInstanceOnline, back to WaitForSsmOnline.
  assert {
    condition = alltrue([
      for error in ["InstanceNotReady", "InstanceLost"] :
      concat([
        for retrier in jsondecode(aws_sfn_state_machine.job.definition).States.WaitForSsmOnline.Retry : retrier.MaxAttempts
        if contains(retrier.ErrorEquals, error) || contains(retrier.ErrorEquals, "States.ALL")
      ], [0])[0] == 0
    ])
    error_message = "WaitForSsmOnline retries InstanceNotReady or InstanceLost (the first retrier matching it, if any, must have MaxAttempts 0)."
  }
  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.job.definition).States.HasCapacity.Default == "WaitForSsmOnline" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForSsmOnline.ResultPath == "$.ssm" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.WaitForSsmOnline.Next == "IsInstanceOnline" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.IsInstanceOnline.Type == "Choice" &&
      jsondecode(aws_sfn_state_machine.job.definition).States.IsInstanceOnline.Choices == [
        { Variable = "$.ssm.online", BooleanEquals = true, Next = "RunBuildCommand" }
      ] &&
      jsondecode(aws_sfn_state_machine.job.definition).States.IsInstanceOnline.Default == "WaitForSsmOnline"
    )
    error_message = "IsInstanceOnline must go on to RunBuildCommand when $.ssm.online, else back to WaitForSsmOnline."
  }
  assert {
    condition = (
      aws_sfn_state_machine.job.type == "STANDARD" &&
      !aws_sfn_state_machine.job.tracing_configuration[0].enabled &&
      aws_sfn_state_machine.job.logging_configuration[0].level == "ERROR" &&
      !aws_sfn_state_machine.job.logging_configuration[0].include_execution_data
    )
    error_message = "The state machine must be STANDARD, untraced without tracing_enabled, and log errors without execution data."
  }
  assert {
    condition = jsondecode(aws_iam_role_policy.state_machine.policy).Statement[0].Resource == flatten([
      for name in ["acquire", "enqueue", "wait-online", "run-command", "release", "report"] : [
        "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-${name}",
        "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-${name}:*",
      ]
    ])
    error_message = "The state machine may invoke functions other than its steps."
  }
}

run "functions_share_one_small_configuration" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  assert {
    condition     = length(output.lambda_config_json) < 3500
    error_message = "EC2_ACTION_CONFIG is over its size budget."
  }
  assert {
    condition = (
      jsondecode(output.lambda_config_json).state_machine_arn == "arn:aws:states:eu-west-1:123456789012:stateMachine:ci-build-job" &&
      jsondecode(output.lambda_config_json).poll_function_name == "ci-build-poll" &&
      jsondecode(output.lambda_config_json).jobs_table == "ci-build-jobs" &&
      jsondecode(output.lambda_config_json).ssm_registration_timeout_seconds == 900 &&
      jsondecode(output.lambda_config_json).actions[1].defaults.ImageId == "ami-0123456789abcdef0" &&
      jsondecode(output.lambda_config_json).actions[0].defaults.ImageId == null
    )
    error_message = "EC2_ACTION_CONFIG does not match DESIGN.md."
  }
  assert {
    condition = [for action in jsondecode(output.lambda_config_json).actions : "${action.provider}:${join(",", action.versions)}"] == [
      "EC2-Linux:1", "EC2-Windows:3,2",
    ]
    error_message = "EC2_ACTION_CONFIG must list every served version of each action (the poller polls each)."
  }
  assert {
    condition = alltrue([
      for key, function in aws_lambda_function.this :
      function.handler == "ec2_action.handlers.${key}.handler" &&
      one(function.architectures) == "arm64" &&
      function.runtime == "python3.12" &&
      function.tracing_config[0].mode == "PassThrough" &&
      one(keys(function.environment[0].variables)) == "EC2_ACTION_CONFIG" &&
      function.function_name == "ci-build-${replace(key, "_", "-")}"
    ])
    error_message = "A function's handler, architecture, runtime, tracing (PassThrough without tracing_enabled) or environment is wrong."
  }
  assert {
    condition = (
      jsondecode(output.lambda_config_json).tracing == false &&
      sort(keys(aws_lambda_function.this)) == sort(["poll", "acquire", "wait_online", "run_command", "command_event", "release", "report", "reap", "enqueue", "keeper", "interruption"])
    )
    error_message = "The functions are not poll, acquire, wait_online, run_command, command_event, release, report, reap, enqueue, keeper and interruption, or they trace without tracing_enabled."
  }
  # wait_online waits for SSM registration inside one invocation: it gets Lambda's longest timeout.
  assert {
    condition     = aws_lambda_function.this["wait_online"].timeout == 900
    error_message = "wait_online's timeout must be 900 seconds."
  }
  assert {
    condition = alltrue([
      for key, group in aws_cloudwatch_log_group.lambda :
      group.name == "/aws/lambda/ci-build-${replace(key, "_", "-")}" && group.retention_in_days == 30
    ])
    error_message = "A function's log group is missing or has no retention."
  }
  assert {
    condition = (
      aws_dynamodb_table.jobs.ttl[0].attribute_name == "expires_at" &&
      aws_dynamodb_table.jobs.point_in_time_recovery[0].enabled &&
      aws_dynamodb_table.jobs.server_side_encryption[0].enabled
    )
    error_message = "The jobs table needs TTL on expires_at, PITR and SSE."
  }
}

run "pools_have_a_registry_a_keeper_and_their_configuration" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  # One partition per pool (its counter and members) and per pool's queue, items sorted by id (the queue by time).
  assert {
    condition = (
      aws_dynamodb_table.pool.name == "ci-build-pool" &&
      aws_dynamodb_table.pool.hash_key == "pool" && aws_dynamodb_table.pool.range_key == "id" &&
      aws_dynamodb_table.pool.billing_mode == "PAY_PER_REQUEST" &&
      toset([for attribute in aws_dynamodb_table.pool.attribute : "${attribute.name}:${attribute.type}"]) == toset(["pool:S", "id:S"]) &&
      aws_dynamodb_table.pool.ttl[0].attribute_name == "expires_at" && aws_dynamodb_table.pool.ttl[0].enabled &&
      aws_dynamodb_table.pool.point_in_time_recovery[0].enabled &&
      aws_dynamodb_table.pool.server_side_encryption[0].enabled &&
      aws_dynamodb_table.pool.tags == tomap({ Team = "platform" })
    )
    error_message = "The registry table must be <prefix>-pool, keyed pool (hash) and id (range), on demand, with TTL on expires_at, PITR, SSE and the tags."
  }
  assert {
    condition = (
      aws_cloudwatch_event_rule.pool_keeper.schedule_expression == "rate(1 minute)" &&
      aws_cloudwatch_event_rule.pool_keeper.name == "ci-build-pool-keeper" &&
      aws_lambda_permission.events["pool_keeper"].function_name == "ci-build-keeper" &&
      aws_lambda_permission.events["pool_keeper"].principal == "events.amazonaws.com" &&
      aws_lambda_function.this["keeper"].timeout == 300 &&
      aws_lambda_function.this["enqueue"].timeout == 60 &&
      aws_lambda_function.this["keeper"].handler == "ec2_action.handlers.keeper.handler" &&
      aws_lambda_function.this["enqueue"].handler == "ec2_action.handlers.enqueue.handler"
    )
    error_message = "The keeper runs on pool_keeper_schedule_expression (300 s), enqueue has 60 s."
  }
  assert {
    condition = (
      jsondecode(output.lambda_config_json).pool_table == "ci-build-pool" &&
      jsondecode(output.lambda_config_json).keeper_function_name == "ci-build-keeper" &&
      jsondecode(output.lambda_config_json).launch_templates == {
        Linux   = { id = "lt-0123456789abcdef0", version = "3" }
        Windows = { id = "lt-0123456789abcdef1", version = "1" }
      }
    )
    error_message = "EC2_ACTION_CONFIG must name the registry table, the keeper and both launch templates with their versions (no ARN: the functions need none)."
  }
  # Each action's capacity reaches the functions (compact keys); an ephemeral action has no pool.
  assert {
    condition = (
      [for action in jsondecode(output.lambda_config_json).actions : "${action.key}:${action.strategy}:${action.cap}"] == ["linux:ephemeral:10", "windows:stopped:4"] &&
      jsondecode(output.lambda_config_json).actions[0].pool == null &&
      jsondecode(output.lambda_config_json).actions[1].pool.min == 1 &&
      jsondecode(output.lambda_config_json).actions[1].pool.hibernate == true &&
      jsondecode(output.lambda_config_json).actions[1].pool.tz == "Europe/Paris" &&
      jsondecode(output.lambda_config_json).actions[1].pool.schedule[0].min == 3
    )
    error_message = "Each action's strategy, cap and pool must reach EC2_ACTION_CONFIG."
  }
  assert {
    condition     = output.pool_table_name == "ci-build-pool" && output.keeper_function_name == "ci-build-keeper"
    error_message = "The registry table and the keeper must be outputs."
  }
}

# terraform destroy ends every instance the stack launched before it removes the functions: the keeper is invoked on
# create, on each change of the functions' configuration and on destroy (the drain, lambda_src/ec2_action/drain.py).
run "the_keeper_is_invoked_on_apply_and_on_destroy" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  assert {
    condition = (
      aws_lambda_invocation.keeper.lifecycle_scope == "CRUD" &&
      aws_lambda_invocation.keeper.function_name == "ci-build-keeper" &&
      aws_lambda_invocation.keeper.terraform_key == "tf" &&
      aws_lambda_invocation.keeper.triggers == null
    )
    error_message = "The keeper must be invoked on create, update and destroy (lifecycle_scope CRUD, lifecycle under \"tf\", which the keeper reads), without triggers (a trigger's change replaces the invocation: a drain on apply)."
  }
  # A change of the configuration the keeper reads (a pool's settings, a cap, the launch template version) changes
  # the input: the apply runs a pass at once. No `action` key: that is a nudge naming one action.
  assert {
    condition     = jsondecode(aws_lambda_invocation.keeper.input) == { configuration = sha256(output.lambda_config_json) }
    error_message = "The invocation's input must be the hash of EC2_ACTION_CONFIG, and nothing else."
  }
}

run "tracing_enabled_traces_the_functions_and_the_state_machine" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  variables {
    tracing_enabled = true
  }

  assert {
    condition = length(aws_lambda_function.this) == 11 && alltrue([
      for key, function in aws_lambda_function.this : function.tracing_config[0].mode == "Active"
    ])
    error_message = "With tracing_enabled every function must trace Active."
  }
  assert {
    condition     = aws_sfn_state_machine.job.tracing_configuration[0].enabled
    error_message = "With tracing_enabled the state machine must be traced."
  }
  # The functions load the X-Ray SDK only when their configuration says so.
  assert {
    condition     = jsondecode(output.lambda_config_json).tracing == true
    error_message = "With tracing_enabled, EC2_ACTION_CONFIG must say tracing: true."
  }
}

run "events_match_only_this_stack" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.job_started.event_pattern).detail == {
      state = ["STARTED"]
      "$or" = [
        { type = { owner = ["Custom"], category = ["Build"], provider = ["EC2-Linux"], version = ["1"] } },
        { type = { owner = ["Custom"], category = ["Build"], provider = ["EC2-Windows"], version = ["3", "2"] } },
      ]
    }
    error_message = "The STARTED rule does not match exactly this stack's action types."
  }
  assert {
    condition = (
      jsondecode(aws_cloudwatch_event_rule.command_finished.event_pattern).detail["document-name"] == ["ci-build-run-build"] &&
      !contains(jsondecode(aws_cloudwatch_event_rule.command_finished.event_pattern).detail.status, "InProgress")
    )
    error_message = "The command rule must match only terminal statuses of this stack's document."
  }
  assert {
    condition     = aws_cloudwatch_event_rule.job_sweep.schedule_expression == "rate(1 minute)"
    error_message = "The sweep schedule is not the configured one."
  }
  assert {
    condition = alltrue([
      for key, permission in aws_lambda_permission.events :
      permission.principal == "events.amazonaws.com" && permission.action == "lambda:InvokeFunction"
    ]) && length(aws_lambda_permission.events) == 8
    error_message = "Each rule needs exactly one EventBridge permission."
  }
}

# Spot and EC2 Fleet: every launch is a CreateFleet (type instant), authorised on the same resources and with the same
# conditions as RunInstances; the interruption function restarts or fails a build whose instance goes away.
run "fleet_launches_spot_and_interruptions" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  # Each launch statement allows RunInstances and CreateFleet together: CreateFleet never with fewer conditions.
  assert {
    condition = alltrue(flatten([
      for key in ["acquire", "keeper"] : [
        for statement in jsondecode(output.lambda_policies[key]).Statement :
        contains(statement.Action, "ec2:RunInstances") == contains(statement.Action, "ec2:CreateFleet")
      ]
    ])) && join(",", sort([for key, policy in output.lambda_policies : key if strcontains(policy, "ec2:CreateFleet")])) == "acquire,keeper"
    error_message = "Only acquire and keeper may create fleets, and each statement allowing RunInstances must allow CreateFleet alike (and the reverse)."
  }
  # A spot request and an instant fleet cannot carry the stack's tag: only in the statement of the configured network
  # and templates, never with the instance, volume or network-interface statements' wildcards loosened.
  assert {
    condition = [
      for statement in jsondecode(output.lambda_policies.acquire).Statement : statement.Sid
      if anytrue([for resource in statement.Resource : can(regex(":(spot-instances-request|fleet)/", resource))])
      ] == ["LaunchIntoConfiguredNetwork"] && alltrue([
        for statement in jsondecode(output.lambda_policies.acquire).Statement :
        try(statement.Condition, null) == null && length(setsubtract(statement.Resource, [
          "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0123456789abcdef0",
          "arn:aws:ec2:eu-west-1:123456789012:subnet/subnet-0123456789abcdef1",
          "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0",
          "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef0",
          "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-0123456789abcdef1",
          "arn:aws:ec2:eu-west-1:123456789012:spot-instances-request/*",
          "arn:aws:ec2:eu-west-1:123456789012:fleet/*",
        ])) == 0
        if statement.Sid == "LaunchIntoConfiguredNetwork"
    ])
    error_message = "Spot requests and fleets must be allowed only beside the configured subnets, security groups and both launch templates."
  }
  # Service-linked roles: only EC2 Fleet's and Spot's, only by the launching functions.
  assert {
    condition = alltrue(flatten([
      for key in ["acquire", "keeper"] : [
        for statement in jsondecode(output.lambda_policies[key]).Statement :
        statement.Resource == [
          "arn:aws:iam::123456789012:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet",
          "arn:aws:iam::123456789012:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot",
        ] && statement.Condition == { StringEquals = { "iam:AWSServiceName" = ["ec2fleet.amazonaws.com", "spot.amazonaws.com"] } }
        if contains(statement.Action, "iam:CreateServiceLinkedRole")
      ]
    ])) && join(",", sort([for key, policy in output.lambda_policies : key if strcontains(policy, "iam:CreateServiceLinkedRole")])) == "acquire,keeper"
    error_message = "Only acquire and keeper may create service-linked roles, and only EC2 Fleet's and Spot's."
  }
  # The purchase settings reach the functions, the allocation strategy resolved.
  assert {
    condition = [
      for action in jsondecode(output.lambda_config_json).actions : [action.types, action.purchase, action.alloc, action.od_after]
      ] == [
      [["m5.large", "t3.xlarge"], "spot-then-on-demand", "price-capacity-optimized", 1],
      [[], "on-demand", "lowest-price", 2],
    ]
    error_message = "Each action's instance types, purchase option, allocation strategy (resolved) and interruption budget must reach EC2_ACTION_CONFIG."
  }
  # The interruption function: its handler and a role that reads instances and members, takes a job's token and
  # answers it, and cancels commands; it changes no instance and launches nothing.
  assert {
    condition = (
      aws_lambda_function.this["interruption"].handler == "ec2_action.handlers.interruption.handler" &&
      aws_lambda_function.this["interruption"].timeout == 60 &&
      sort(flatten([for statement in jsondecode(output.lambda_policies.interruption).Statement : statement.Action])) == sort([
        "logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords",
        "ec2:DescribeInstances", "dynamodb:GetItem", "dynamodb:GetItem", "dynamodb:UpdateItem",
        "ssm:ListCommands", "ssm:GetCommandInvocation", "ssm:CancelCommand", "logs:GetLogEvents",
        "states:SendTaskSuccess", "states:SendTaskFailure",
      ])
    )
    error_message = "The interruption function's handler or its role's actions are not the expected ones."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.interruption).Statement :
      statement.Resource == ["arn:aws:dynamodb:eu-west-1:123456789012:table/${contains(statement.Action, "dynamodb:UpdateItem") ? "ci-build-jobs" : "ci-build-pool"}"]
      if anytrue([for action in statement.Action : startswith(action, "dynamodb:")])
    ])
    error_message = "interruption may update only the jobs table (the task token), and read only the registry."
  }
  # Its rules: the spot warning, the rebalance recommendation and every instance's shutting-down or terminated state.
  assert {
    condition = (
      { for key, rule in aws_cloudwatch_event_rule.instance : key => jsondecode(rule.event_pattern) } == {
        spot_interruption        = { source = ["aws.ec2"], "detail-type" = ["EC2 Spot Instance Interruption Warning"] }
        rebalance_recommendation = { source = ["aws.ec2"], "detail-type" = ["EC2 Instance Rebalance Recommendation"] }
        instance_terminating = {
          source = ["aws.ec2"], "detail-type" = ["EC2 Instance State-change Notification"]
          detail = { state = ["shutting-down", "terminated"] }
        }
      } &&
      alltrue([for target in aws_cloudwatch_event_target.instance : target.arn == "arn:aws:lambda:eu-west-1:123456789012:function:ci-build-interruption"]) &&
      alltrue([for key in keys(aws_cloudwatch_event_rule.instance) : aws_lambda_permission.events[key].function_name == "ci-build-interruption"]) &&
      aws_cloudwatch_event_rule.instance["spot_interruption"].name == "ci-build-spot-interruption"
    )
    error_message = "The interruption function must receive the spot warning, the rebalance recommendation and instances shutting down or terminated, and nothing else."
  }
}

run "reaper_marks_and_terminates_only_this_stacks_instances" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  assert {
    condition = length([
      for statement in jsondecode(output.lambda_policies.reap).Statement : statement
      if contains(flatten([statement.Action]), "ec2:TerminateInstances") &&
      statement.Resource == ["arn:aws:ec2:eu-west-1:123456789012:instance/*"] &&
      try(statement.Condition, null) == { StringEquals = { "ec2:ResourceTag/ec2-action:stack" = "ci-build" } }
    ]) == 1
    error_message = "reap's TerminateInstances must require the ec2-action:stack tag of this stack."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.reap).Statement :
      statement.Resource == ["arn:aws:ec2:eu-west-1:123456789012:instance/*"] &&
      statement.Condition.StringEquals == { "ec2:ResourceTag/ec2-action:stack" = "ci-build" } &&
      statement.Condition["ForAllValues:StringEquals"] == { "aws:TagKeys" = ["ec2-action:orphaned-at", "ec2-action:orphan-reason"] } &&
      statement.Condition.Null == { "aws:TagKeys" = "false" }
      if anytrue([for action in flatten([statement.Action]) : contains(["ec2:CreateTags", "ec2:DeleteTags"], action)])
    ]) && strcontains(output.lambda_policies.reap, "ec2:CreateTags")
    error_message = "reap may tag instances of another stack, or with tag keys other than its marks."
  }
  assert {
    condition     = !anytrue([for key, policy in output.lambda_policies : strcontains(policy, "cloudwatch:")])
    error_message = "A function may call CloudWatch's API: metrics are Embedded Metric Format log lines, which need no permission."
  }
  assert {
    condition = alltrue([
      for statement in jsondecode(output.lambda_policies.reap).Statement :
      statement.Resource == ["arn:aws:states:eu-west-1:123456789012:execution:ci-build-job:*"]
      if contains(flatten([statement.Action]), "states:DescribeExecution")
    ])
    error_message = "reap may describe executions of another state machine."
  }
  assert {
    condition = (
      aws_cloudwatch_event_rule.reaper.schedule_expression == "rate(5 minutes)" &&
      aws_lambda_function.this["reap"].handler == "ec2_action.handlers.reap.handler" &&
      !can(jsondecode(output.lambda_config_json).reaper_interval_seconds) &&
      jsondecode(output.lambda_config_json).orphan_grace_seconds == 1800
    )
    error_message = "The reaper's schedule, handler or configuration is wrong."
  }
}

run "hourly_reaper_schedule" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  variables {
    reaper_schedule_expression = "rate(2 hours)"
  }

  assert {
    condition = (
      aws_cloudwatch_event_rule.reaper.schedule_expression == "rate(2 hours)"
    )
    error_message = "rate(2 hours) must reach the reaper's schedule (the reaped-instances alarm's period: tests/observability.tftest.hcl)."
  }
}

run "single_action_type_pattern_needs_no_or" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  variables {
    actions = {
      linux = {
        category              = "Test"
        provider              = "EC2-Linux"
        versions              = ["1"]
        image_id              = null
        instance_type         = null
        timeout_minutes       = 60
        root_volume_size_gib  = 30
        strategy              = "ephemeral"
        max_concurrent_builds = 10
        pool = {
          min_ready        = 0, schedule = [], timezone = "UTC", hibernate = false, max_builds = 50, max_age_hours = 168,
          max_idle_minutes = 10, reset_command = ""
        }
        instance_types = [], purchase_option = "on-demand", allocation_strategy = null, interruptions_before_on_demand = 2
      }
    }
  }

  assert {
    condition = jsondecode(aws_cloudwatch_event_rule.job_started.event_pattern).detail == {
      state = ["STARTED"]
      type  = { owner = ["Custom"], category = ["Test"], provider = ["EC2-Linux"], version = ["1"] }
    }
    error_message = "A single action type should be matched without $or."
  }
}

run "oversized_configuration_is_refused" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  variables {
    allowed_image_ids = [for i in range(200) : format("ami-%017d", i)]
  }

  expect_failures = [aws_lambda_function.this]
}

run "default_timeout_over_maximum_is_refused" {
  command = plan

  module {
    source = "./modules/orchestrator"
  }

  variables {
    default_build_timeout_minutes = 600
  }

  expect_failures = [aws_sfn_state_machine.job]
}
