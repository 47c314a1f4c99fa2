variable "name_prefix" {
  description = "Prefix of the stack's resource names: the dashboard's and the alarms' names, and the value of the metrics' `Stack` dimension."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the functions put the module's metrics in (EMF lines), read by the dashboard and the alarms."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z._/#-][0-9A-Za-z._/#:-]{0,254}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits and . _ / # : - (not first a colon), and must not start with AWS/ (CloudWatch reserves it)."
  }
}

variable "actions" {
  description = "The stack's actions, keyed like the root module's `actions` (the metrics' `Action` dimension): `keeps_ready_instances` is true when the action's pool keeps a minimum of ready instances (min_ready or a schedule window above 0), which gives it a pool-shortfall alarm."
  type        = map(object({ keeps_ready_instances = bool }))

  validation {
    condition     = alltrue([for key in keys(var.actions) : can(regex("^[0-9A-Za-z_.-]{1,64}$", key))])
    error_message = "Action keys must be 1-64 letters, digits, underscores, dots and hyphens: they name alarms and are quoted in the alarms' metric queries."
  }
}

variable "function_names" {
  description = "The Lambda functions' names, keyed by function (poll, acquire, ...): the function-errors widget and alarms."
  type        = map(string)
}

variable "state_machine_arn" {
  description = "ARN of the state machine running one job per execution: the executions widget, alarms and link."
  type        = string
}

variable "build_log_group_name" {
  description = "Log group receiving the builds' output: the dashboard links to it."
  type        = string
}

variable "reaper_schedule_expression" {
  description = "The reaper's schedule, rate(N minute(s)|hour(s)) (validated by the root module): the reaped-instances alarm sums over one reaper interval."
  type        = string

  validation {
    condition     = can(regex("^rate\\(([0-9]+) (minute|hour)s?\\)$", var.reaper_schedule_expression))
    error_message = "reaper_schedule_expression must be rate(N minute(s)) or rate(N hour(s))."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm fires (e.g. an SNS topic); empty: the alarms only change state."
  type        = list(string)
}

variable "dashboard_enabled" {
  description = "Create the CloudWatch dashboard. The alarms do not depend on it."
  type        = bool
  default     = true

  validation {
    condition     = var.dashboard_enabled != null
    error_message = "dashboard_enabled must be true or false."
  }
}

variable "queue_wait_alarm_minutes" {
  description = "An action's alarm fires when a job has waited in its capacity queue longer than this many minutes (OldestQueuedSeconds)."
  type        = number
  default     = 15

  validation {
    condition     = try(var.queue_wait_alarm_minutes >= 1 && var.queue_wait_alarm_minutes <= 1380 && floor(var.queue_wait_alarm_minutes) == var.queue_wait_alarm_minutes, false)
    error_message = "queue_wait_alarm_minutes must be a whole number from 1 to 1380 (a job times out after at most 23 hours)."
  }
}

variable "pool_shortfall_alarm_minutes" {
  description = "An action's alarm fires when its pool has stayed below its minimum of ready instances (MissingReadyInstances > 0 at every pool keeper run) for this many minutes: a multiple of 5, the alarm's period."
  type        = number
  default     = 30

  validation {
    condition     = try(var.pool_shortfall_alarm_minutes >= 5 && var.pool_shortfall_alarm_minutes <= 1440 && var.pool_shortfall_alarm_minutes % 5 == 0, false)
    error_message = "pool_shortfall_alarm_minutes must be a multiple of 5 from 5 to 1440 (the alarm looks at 5-minute periods, a day at most)."
  }
}

variable "capacity_error_alarm_periods" {
  description = "An action's alarm fires when EC2 refused its launches for lack of capacity (CapacityErrors, any instance type and zone) in this many consecutive 5-minute periods."
  type        = number
  default     = 3

  validation {
    condition     = try(var.capacity_error_alarm_periods >= 1 && var.capacity_error_alarm_periods <= 288 && floor(var.capacity_error_alarm_periods) == var.capacity_error_alarm_periods, false)
    error_message = "capacity_error_alarm_periods must be a whole number from 1 to 288 (a day of 5-minute periods)."
  }
}

variable "tags" {
  description = "Tags applied to the alarms (dashboards take no tags)."
  type        = map(string)
}
