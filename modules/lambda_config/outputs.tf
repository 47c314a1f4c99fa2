output "json" {
  description = "The EC2_ACTION_CONFIG value: the configuration as compact JSON (keys sorted)."
  value       = jsonencode(local.config)
}
