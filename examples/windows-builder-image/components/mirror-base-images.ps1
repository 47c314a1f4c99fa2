# Pushes each cached base image to this account's ECR. Mirrors (the component's parameter) lists source=target pairs,
# comma-separated; Registry is the ECR registry to log in to.
$ErrorActionPreference = 'Stop'
$docker = Join-Path $env:ProgramFiles 'docker\docker.exe'
$registry = '{{ Registry }}'
$region = '{{ Region }}'
$password = & aws ecr get-login-password --region $region
if ($LASTEXITCODE -ne 0) {
    throw "aws ecr get-login-password exited with $LASTEXITCODE"
}
$password | & $docker login --username AWS --password-stdin $registry
if ($LASTEXITCODE -ne 0) {
    throw "docker login $registry exited with $LASTEXITCODE"
}
foreach ($pair in ('{{ Mirrors }}' -split ',')) {
    $source, $target = $pair -split '=', 2
    & $docker tag $source $target
    if ($LASTEXITCODE -ne 0) {
        throw "docker tag $source $target exited with $LASTEXITCODE"
    }
    & $docker push $target
    if ($LASTEXITCODE -ne 0) {
        throw "docker push $target exited with $LASTEXITCODE"
    }
    & $docker rmi $target
    Write-Output "$source mirrored to $target"
}
& $docker logout $registry
