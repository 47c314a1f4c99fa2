# Pulls the base images (the component's BaseImages parameter, comma-separated) so that they are cached in the AMI,
# and checks that each one's OS build is the host's: process isolation runs only containers of the host's build.
$ErrorActionPreference = 'Stop'
$docker = Join-Path $env:ProgramFiles 'docker\docker.exe'
$hostBuild = [Environment]::OSVersion.Version.Build
foreach ($image in ('{{ BaseImages }}' -split ',')) {
    & $docker pull $image
    if ($LASTEXITCODE -ne 0) {
        throw "docker pull $image exited with $LASTEXITCODE"
    }
    $inspected = & $docker image inspect $image
    if ($LASTEXITCODE -ne 0) {
        throw "docker image inspect $image exited with $LASTEXITCODE"
    }
    $osVersion = ($inspected | Out-String | ConvertFrom-Json)[0].OsVersion
    if (([version]$osVersion).Build -ne $hostBuild) {
        throw "$image is OS build $osVersion; this host is build $hostBuild: it would not run process-isolated"
    }
    Write-Output "$image cached (OS $osVersion)"
}
