# Fails the image if its SSM Agent is older than the module needs (3.3.2746.0): builds run through Systems Manager.
$ErrorActionPreference = 'Stop'
$minimum = [version]'3.3.2746.0'
$agent = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall\*' |
    Where-Object { $_.DisplayName -like 'Amazon SSM Agent*' } |
    Select-Object -First 1
if ($null -eq $agent) {
    throw 'Amazon SSM Agent is not installed'
}
if ([version]$agent.DisplayVersion -lt $minimum) {
    throw "Amazon SSM Agent $($agent.DisplayVersion) is older than $minimum"
}
Write-Output "Amazon SSM Agent $($agent.DisplayVersion)"
