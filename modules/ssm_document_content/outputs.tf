output "json" {
  description = "The SSM Command document's content (JSON): ssm/run-build.json.tftpl with each script inlined as a list of its lines, split on \"\\n\" exactly (a trailing newline gives a last empty line; a CR stays in its line)."
  value = templatefile("${local.scripts_dir}/run-build.json.tftpl", {
    linux_script_lines   = jsonencode(split("\n", file("${local.scripts_dir}/linux/run-build.sh")))
    windows_script_lines = jsonencode(split("\n", file("${local.scripts_dir}/windows/run-build.ps1")))
  })
}
