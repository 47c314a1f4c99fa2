# Installs Docker Engine from download.docker.com's static Windows binaries and registers it as a service that starts
# with Windows. The version comes from the component's DockerVersion parameter.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$version = '{{ DockerVersion }}'
$archive = Join-Path $env:TEMP "docker-$version.zip"
Invoke-WebRequest -UseBasicParsing -Uri "https://download.docker.com/win/static/stable/x86_64/docker-$version.zip" -OutFile $archive
Expand-Archive -Path $archive -DestinationPath $env:ProgramFiles -Force
Remove-Item $archive
$docker = Join-Path $env:ProgramFiles 'docker'
[Environment]::SetEnvironmentVariable('Path', "$([Environment]::GetEnvironmentVariable('Path', 'Machine'));$docker", 'Machine')
& (Join-Path $docker 'dockerd.exe') --register-service
if ($LASTEXITCODE -ne 0) {
    throw "dockerd --register-service exited with $LASTEXITCODE"
}
Set-Service -Name docker -StartupType Automatic
Start-Service -Name docker
& (Join-Path $docker 'docker.exe') version
if ($LASTEXITCODE -ne 0) {
    throw "docker version exited with $LASTEXITCODE"
}
