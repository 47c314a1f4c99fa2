locals {
  # The scripts live in the repository root (ssm/) so that shellcheck and the local cloud read the same files.
  scripts_dir = "${path.module}/../../ssm"
}
