# Enables the Windows Containers feature (a reboot follows, as its own step of the component).
$ErrorActionPreference = 'Stop'
$feature = Install-WindowsFeature -Name Containers
if (-not $feature.Success) {
    throw "Install-WindowsFeature Containers failed: $($feature.ExitCode)"
}
Write-Output "Containers feature: $($feature.ExitCode)"
