# Policies are built with jsonencode() rather than aws_iam_policy_document so that `terraform test` with a mocked
# provider can read them at plan time (tests/orchestrator.tftest.hcl checks them through the lambda_policies output).

locals {
  stack_tag_key = "ec2-action:stack"
  # The only tags the reaper may add or remove (lambda_src/ec2_action/tags.py; tests/test_shared_constants.py keeps
  # these keys equal to the Lambdas').
  reaper_tag_keys = ["ec2-action:orphaned-at", "ec2-action:orphan-reason"]
  ec2_arn         = "${local.arn_prefix}:ec2:${local.region}:${local.account_id}"

  # The end of a build's output: GetCommandInvocation returns only its first 24,000 characters, the build log group's
  # streams (written by the SSM Agent) hold all of it. Read-only, those streams only; used by whoever reads a
  # command's outcome (command_event, poll's sweep, and interruption for a command that ended first).
  read_build_output_statement = {
    Sid      = "ReadBuildOutputTail"
    Effect   = "Allow"
    Action   = ["logs:GetLogEvents"]
    Resource = ["${local.arn_prefix}:logs:${local.region}:${local.account_id}:log-group:${var.build_log_group_name}:log-stream:*"]
  }

  # Every function writes to its own log group and sends X-Ray segments (which cannot be scoped to a resource).
  common_statements = {
    for key in keys(local.functions) : key => [
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${local.log_group_arns[key]}:*"]
      },
      {
        Sid      = "SendTraces"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = ["*"]
      },
    ]
  }

  # Changing an instance's state, each on this stack's instances only (the ec2-action:stack tag): terminate (acquire
  # when a stopped instance cannot start, release, keeper, reap), start (acquire: a stopped pool's member), stop
  # (release and keeper: a stopped pool's member, hibernated or not).
  instance_state_statements = {
    for sid, action in {
      TerminateThisStacksInstances = "ec2:TerminateInstances"
      StartThisStacksInstances     = "ec2:StartInstances"
      StopThisStacksInstances      = "ec2:StopInstances"
      } : action => {
      Sid      = sid
      Effect   = "Allow"
      Action   = [action]
      Resource = ["${local.ec2_arn}:instance/*"]
      Condition = {
        StringEquals = { "ec2:ResourceTag/${local.stack_tag_key}" = var.name_prefix }
      }
    }
  }

  find_instances_statement = {
    # DescribeInstances supports no resource-level permissions; it reads only.
    Sid      = "FindInstances"
    Effect   = "Allow"
    Action   = ["ec2:DescribeInstances"]
    Resource = ["*"]
  }

  # Finding this stack's instances and terminating them: the reaper's, and release's with its pool's calls.
  release_statements = [local.instance_state_statements["ec2:TerminateInstances"], local.find_instances_statement]

  # The registry table of instances, leases and the capacity queue (DESIGN.md, "Instance pools"): only the item calls
  # each function makes. TransactWriteItems is authorised by the calls inside it (PutItem, UpdateItem, DeleteItem,
  # ConditionCheckItem); no function scans the table: a pool's records and queue are one partition each (Query).
  registry_actions = {
    for key, calls in {
      acquire = ["Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
      enqueue = ["Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
      release = ["Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
      keeper  = ["Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
      reap    = ["Query", "GetItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"]
      # Reads the interrupted instance's member record (its lease names the job); never changes the registry.
      interruption = ["GetItem"]
    } : key => [for call in calls : "dynamodb:${call}"]
  }
  registry_statements = {
    for key, actions in local.registry_actions : key => {
      Sid      = "TrackInstancesAndQueue"
      Effect   = "Allow"
      Action   = actions
      Resource = [local.pool_table_arn]
    }
  }

  # Answering the task token of a job waiting for capacity (WaitForCapacity): a grant (serve) or its expiry.
  answer_capacity_waits_statement = {
    Sid      = "AnswerCapacityWaits"
    Effect   = "Allow"
    Action   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
    Resource = [local.state_machine_arn]
  }

  # Launching a builder: acquire's for a job, the keeper's for a pool's minimum, through EC2 Fleet (CreateFleet, type
  # instant), which authorises each instance it launches as RunInstances too: every statement allows both calls, with
  # the same conditions. New instances, volumes and network interfaces must carry this stack's tag (release and
  # run_command can act on tagged instances only; the volumes' and network interfaces' tags come from the launch
  # templates). Launching is allowed with this stack's launch templates only (IMDSv2, instance profile, network
  # interface, shutdown behaviour, self-shutdown), with encrypted volumes only and without a public IP.
  launch_actions       = ["ec2:RunInstances", "ec2:CreateFleet"]
  launch_template_arns = [for platform in sort(keys(var.launch_templates)) : var.launch_templates[platform].arn]
  launch_statements = [
    {
      # Validation reads the AMI (owner, state, root device) before anything launches.
      Sid      = "InspectImages"
      Effect   = "Allow"
      Action   = ["ec2:DescribeImages"]
      Resource = ["*"]
    },
    {
      Sid      = "LaunchTaggedInstances"
      Effect   = "Allow"
      Action   = local.launch_actions
      Resource = ["${local.ec2_arn}:instance/*"]
      Condition = {
        StringEquals = { "aws:RequestTag/${local.stack_tag_key}" = var.name_prefix }
        ArnEquals    = { "ec2:LaunchTemplate" = local.launch_template_arns }
      }
    },
    {
      Sid      = "CreateTaggedEncryptedVolumes"
      Effect   = "Allow"
      Action   = local.launch_actions
      Resource = ["${local.ec2_arn}:volume/*"]
      Condition = {
        StringEquals = { "aws:RequestTag/${local.stack_tag_key}" = var.name_prefix }
        Bool         = { "ec2:Encrypted" = "true" }
      }
    },
    {
      Sid      = "CreateTaggedPrivateNetworkInterfaces"
      Effect   = "Allow"
      Action   = local.launch_actions
      Resource = ["${local.ec2_arn}:network-interface/*"]
      Condition = {
        StringEquals = { "aws:RequestTag/${local.stack_tag_key}" = var.name_prefix }
        BoolIfExists = { "ec2:AssociatePublicIpAddress" = "false" }
      }
    },
    {
      # No key-pair resource: builders are reached through Systems Manager only. A spot instance comes with its
      # one-time spot request, and an instant fleet is the record of one launch request: neither can carry the stack's
      # tag (CreateFleet tags only instances), and neither launches anything the instance statement above refuses.
      Sid    = "LaunchIntoConfiguredNetwork"
      Effect = "Allow"
      Action = local.launch_actions
      Resource = concat(
        [for id in var.subnet_ids : "${local.ec2_arn}:subnet/${id}"],
        [for id in var.security_group_ids : "${local.ec2_arn}:security-group/${id}"],
        local.launch_template_arns,
        ["${local.ec2_arn}:spot-instances-request/*", "${local.ec2_arn}:fleet/*"],
      )
    },
    {
      # Image ARNs carry no account. Only images of the allowed owners, and with allowed_image_ids only those
      # images (the acquire function checks the same first, with a message a person can act on).
      Sid    = "LaunchAllowedImages"
      Effect = "Allow"
      Action = local.launch_actions
      Resource = length(var.allowed_image_ids) > 0 ? [
        for id in var.allowed_image_ids : "${local.arn_prefix}:ec2:${local.region}::image/${id}"
      ] : ["${local.arn_prefix}:ec2:${local.region}::image/*"]
      Condition = {
        StringEquals = { "ec2:Owner" = [for owner in var.allowed_image_owners : owner == "self" ? local.account_id : owner] }
      }
    },
    {
      Sid      = "TagAtLaunchOnly"
      Effect   = "Allow"
      Action   = ["ec2:CreateTags"]
      Resource = ["${local.ec2_arn}:instance/*", "${local.ec2_arn}:volume/*", "${local.ec2_arn}:network-interface/*"]
      Condition = {
        StringEquals = { "ec2:CreateAction" = ["RunInstances", "CreateFleet"] }
      }
    },
    {
      Sid      = "PassBuilderRoleToEc2"
      Effect   = "Allow"
      Action   = ["iam:PassRole"]
      Resource = [var.builder_role_arn]
      Condition = {
        StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" }
      }
    },
    {
      # The first spot launch in an account creates the Spot service-linked role (and EC2 Fleet its own): only
      # those two roles, of those two services.
      Sid    = "CreateFleetAndSpotServiceLinkedRoles"
      Effect = "Allow"
      Action = ["iam:CreateServiceLinkedRole"]
      Resource = [
        for service, role in local.launch_service_linked_roles :
        "${local.arn_prefix}:iam::${local.account_id}:role/aws-service-role/${service}/${role}"
      ]
      Condition = {
        StringEquals = { "iam:AWSServiceName" = keys(local.launch_service_linked_roles) }
      }
    },
  ]
  launch_service_linked_roles = {
    "ec2fleet.amazonaws.com" = "AWSServiceRoleForEC2Fleet"
    "spot.amazonaws.com"     = "AWSServiceRoleForEC2Spot"
  }

  # CodePipeline's job actions (AcknowledgeJob, Put*Result) support no resource-level permissions: AWS requires
  # Resource "*". A job id is unguessable and handed out only by PollForJobs, which is scoped to this stack's action
  # types, so in practice these functions only ever touch this stack's jobs.
  codepipeline_job_actions = [
    "codepipeline:AcknowledgeJob",
    "codepipeline:PutJobSuccessResult",
    "codepipeline:PutJobFailureResult",
  ]

  function_statements = {
    poll = [
      {
        Sid      = "PollOwnActionTypes"
        Effect   = "Allow"
        Action   = ["codepipeline:PollForJobs"]
        Resource = local.action_type_arns
      },
      {
        Sid      = "AnswerJobs"
        Effect   = "Allow"
        Action   = local.codepipeline_job_actions
        Resource = ["*"]
      },
      {
        Sid      = "StartJobExecutions"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = [local.state_machine_arn]
      },
      {
        # The sweep resumes executions whose command status-change event was lost.
        Sid      = "SweepLostCommandEvents"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess"]
        Resource = [local.state_machine_arn]
      },
      {
        # Neither call supports resource-level permissions; they read only. ListCommands finds the command a build
        # awaits when its status-change event was lost.
        Sid      = "ReadCommandResults"
        Effect   = "Allow"
        Action   = ["ssm:GetCommandInvocation", "ssm:ListCommands"]
        Resource = ["*"]
      },
      local.read_build_output_statement,
      {
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"]
        Resource = [local.jobs_table_arn]
      },
    ]

    report = [
      {
        Sid      = "AnswerJobs"
        Effect   = "Allow"
        Action   = ["codepipeline:PutJobSuccessResult", "codepipeline:PutJobFailureResult"]
        Resource = ["*"]
      },
      {
        # Wakes the poller when a build ends before its continuation job was taken.
        Sid      = "WakePoller"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.function_arns.poll]
      },
      {
        # Finds the command of a build that timed out (its output's log location).
        Sid      = "FindTimedOutCommand"
        Effect   = "Allow"
        Action   = ["ssm:ListCommands"]
        Resource = ["*"]
      },
      {
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [local.jobs_table_arn]
      },
    ]

    # A job's instance: a leased pool member (a warm one checked Online in Systems Manager, a stopped one started;
    # terminated and replaced by a fresh launch when it cannot serve) or a new launch.
    acquire = concat(local.launch_statements, [
      local.instance_state_statements["ec2:StartInstances"],
      local.instance_state_statements["ec2:TerminateInstances"],
      local.registry_statements.acquire,
      {
        # A leased warm member's agent health (one call); supports no resource-level permissions, reads only.
        Sid      = "ReadAgentHealth"
        Effect   = "Allow"
        Action   = ["ssm:DescribeInstanceInformation"]
        Resource = ["*"]
      },
    ])

    wait_online = [
      {
        # Both calls support no resource-level permissions; they read only.
        Sid      = "ReadInstanceState"
        Effect   = "Allow"
        Action   = ["ssm:DescribeInstanceInformation", "ec2:DescribeInstances"]
        Resource = ["*"]
      },
      {
        # The learned registration times only: items whose key starts with registration# (registration.py).
        Sid      = "LearnRegistrationTimes"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:PutItem"]
        Resource = [local.jobs_table_arn]
        Condition = {
          "ForAllValues:StringLike" = { "dynamodb:LeadingKeys" = ["registration#*"] }
        }
      },
    ]

    run_command = [
      {
        Sid      = "RunBuildDocument"
        Effect   = "Allow"
        Action   = ["ssm:SendCommand"]
        Resource = [var.document_arn]
      },
      {
        Sid      = "OnThisStacksInstances"
        Effect   = "Allow"
        Action   = ["ssm:SendCommand"]
        Resource = ["${local.ec2_arn}:instance/*"]
        Condition = {
          StringEquals = { "ssm:resourceTag/${local.stack_tag_key}" = var.name_prefix }
        }
      },
      {
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [local.jobs_table_arn]
      },
    ]

    command_event = [
      {
        # Neither call supports resource-level permissions; they read only.
        Sid      = "ReadCommandResults"
        Effect   = "Allow"
        Action   = ["ssm:GetCommandInvocation", "ssm:ListCommands"]
        Resource = ["*"]
      },
      local.read_build_output_statement,
      {
        Sid      = "ResumeExecutions"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess"]
        Resource = [local.state_machine_arn]
      },
      {
        # Finds the task token stored by run_command.
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem"]
        Resource = [local.jobs_table_arn]
      },
    ]

    # Returns a pool member (stopped or hibernated for a stopped pool), retires or terminates the job's instance, then
    # serves the queue inline and nudges the keeper when a retirement left a pool below its minimum.
    release = concat(local.release_statements, [
      local.instance_state_statements["ec2:StopInstances"],
      local.registry_statements.release,
      local.answer_capacity_waits_statement,
      {
        Sid      = "NudgePoolKeeper"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = [local.function_arns.keeper]
      },
    ])

    # WaitForCapacity: writes the queue entry with its task token and serves the queue at once (a grant is a
    # registry write and SendTaskSuccess; acquire materialises the instance).
    enqueue = [
      local.registry_statements.enqueue,
      local.answer_capacity_waits_statement,
    ]

    # Keeps the pools: launches members up to the minimum, stops a stopped pool's new members, retires (terminates)
    # unhealthy, rotated, recycled and idle ones, reading their health in one call each of EC2 and SSM per pass;
    # serves and expires the queue.
    keeper = concat(local.launch_statements, [
      local.instance_state_statements["ec2:StopInstances"],
      local.instance_state_statements["ec2:TerminateInstances"],
      local.find_instances_statement,
      {
        # Health of the ready members (Online or ConnectionLost); supports no resource-level permissions, reads only.
        Sid      = "ReadAgentHealth"
        Effect   = "Allow"
        Action   = ["ssm:DescribeInstanceInformation"]
        Resource = ["*"]
      },
      local.registry_statements.keeper,
      local.answer_capacity_waits_statement,
    ])

    # An interrupted or terminated builder (EventBridge): finds the job that holds it (its member record's lease),
    # delivers the awaited command's result if it already ended, else takes the job's task token and fails it
    # (SpotInterrupted or InstanceLost), cancelling what is left of the command.
    interruption = [
      local.find_instances_statement,
      local.registry_statements.interruption,
      {
        # Reads the job's task token and takes it (a conditional update: only while it is still that token).
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [local.jobs_table_arn]
      },
      {
        # None of these calls supports resource-level permissions: the first two read; CancelCommand ends what is
        # left of a command on an instance that is going away.
        Sid      = "ReadAndCancelCommands"
        Effect   = "Allow"
        Action   = ["ssm:ListCommands", "ssm:GetCommandInvocation", "ssm:CancelCommand"]
        Resource = ["*"]
      },
      local.read_build_output_statement,
      {
        # The build's task: its result when the command already ended, else its failure.
        Sid      = "AnswerBuildTasks"
        Effect   = "Allow"
        Action   = ["states:SendTaskSuccess", "states:SendTaskFailure"]
        Resource = [local.state_machine_arn]
      },
    ]

    reap = concat(local.release_statements, [
      local.registry_statements.reap,
      {
        # Marks (and unmarks) this stack's instances only, with the reaper's own tag keys only; the Null condition
        # refuses a DeleteTags without tag keys (which would delete every tag).
        Sid      = "MarkOrphans"
        Effect   = "Allow"
        Action   = ["ec2:CreateTags", "ec2:DeleteTags"]
        Resource = ["${local.ec2_arn}:instance/*"]
        Condition = {
          StringEquals                = { "ec2:ResourceTag/${local.stack_tag_key}" = var.name_prefix }
          "ForAllValues:StringEquals" = { "aws:TagKeys" = local.reaper_tag_keys }
          Null                        = { "aws:TagKeys" = "false" }
        }
      },
      {
        Sid      = "ReadJobExecutions"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution"]
        Resource = [local.execution_arns]
      },
      {
        Sid      = "TrackJobs"
        Effect   = "Allow"
        Action   = ["dynamodb:Scan", "dynamodb:GetItem", "dynamodb:UpdateItem"]
        Resource = [local.jobs_table_arn]
      },
      {
        # Fails acknowledged jobs whose execution ended without reporting (see codepipeline_job_actions).
        Sid      = "AnswerJobs"
        Effect   = "Allow"
        Action   = ["codepipeline:PutJobFailureResult"]
        Resource = ["*"]
      },
    ])
  }

  lambda_policies = {
    for key in keys(local.functions) : key => jsonencode({
      Version   = "2012-10-17"
      Statement = concat(local.common_statements[key], local.function_statements[key])
    })
  }

  state_machine_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "InvokeJobSteps"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = flatten([for key in ["acquire", "enqueue", "wait_online", "run_command", "release", "report"] : [local.function_arns[key], "${local.function_arns[key]}:*"]])
      },
      {
        # Log delivery and X-Ray APIs support no resource-level permissions (Step Functions logging requirements).
        Sid    = "DeliverLogsAndTraces"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery",
          "logs:GetLogDelivery",
          "logs:UpdateLogDelivery",
          "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries",
          "logs:PutResourcePolicy",
          "logs:DescribeResourcePolicies",
          "logs:DescribeLogGroups",
          "xray:PutTraceSegments",
          "xray:PutTelemetryRecords",
          "xray:GetSamplingRules",
          "xray:GetSamplingTargets",
        ]
        Resource = ["*"]
      },
    ]
  })
}

resource "aws_iam_role" "lambda" {
  for_each = local.functions

  name                 = local.function_names[each.key]
  description          = "The ${local.function_names[each.key]} function of the CodePipeline EC2 action."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.functions

  name   = "least-privilege"
  role   = aws_iam_role.lambda[each.key].id
  policy = local.lambda_policies[each.key]
}

resource "aws_iam_role" "state_machine" {
  name                 = "${var.name_prefix}-job"
  description          = "The ${var.name_prefix}-job state machine of the CodePipeline EC2 action."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      # Account only: CreateStateMachine checks that it can assume the role before the state machine exists, so
      # an aws:SourceArn condition naming it risks refusing the create.
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
      }
    }]
  })
  tags = var.tags
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "invoke-job-steps"
  role   = aws_iam_role.state_machine.id
  policy = local.state_machine_policy
}
