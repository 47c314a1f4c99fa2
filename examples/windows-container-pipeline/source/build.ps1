<#
.SYNOPSIS
    Builds the Windows container image in this directory, pushes it to ECR and writes imagedefinitions.json.
.DESCRIPTION
    The action's Command runs it on the builder, in the unzipped source:
        ./build.ps1 -RepositoryUri '<account>.dkr.ecr.<region>.amazonaws.com/<name>' -ContainerName hello
    The image is tagged with the pipeline execution id (PipelineExecutionId is set by the action). Every native
    command's exit code is checked: a failed login, build or push fails the action.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string] $RepositoryUri,

    [string] $ContainerName = 'app',

    [string] $Tag = $env:PipelineExecutionId
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 3.0

function Invoke-Native {
    # Runs a native command and stops on a non-zero exit code ($ErrorActionPreference does not see those).
    param([Parameter(Mandatory = $true)] [string] $What, [Parameter(Mandatory = $true)] [scriptblock] $Command)
    & $Command
    if ($LASTEXITCODE -ne 0) {
        throw "$What failed with exit code $LASTEXITCODE"
    }
}

if ([string]::IsNullOrEmpty($Tag)) {
    $Tag = 'manual-' + (Get-Date -Format 'yyyyMMddHHmmss')
}
$registry = $RepositoryUri.Split('/')[0]
$region = $registry.Split('.')[3]
$image = "${RepositoryUri}:$Tag"

Write-Output "Logging in to $registry"
if (Get-Command aws -ErrorAction SilentlyContinue) {
    $password = aws ecr get-login-password --region $region
    if ($LASTEXITCODE -ne 0) {
        throw "aws ecr get-login-password failed with exit code $LASTEXITCODE"
    }
} else {
    # Windows AMIs ship the AWS Tools for PowerShell; the AWS CLI is optional.
    $password = (Get-ECRLoginCommand -Region $region).Password
}
Invoke-Native 'docker login' { $password | docker login --username AWS --password-stdin $registry }

Write-Output "Building $image"
Invoke-Native 'docker build' { docker build --tag $image . }

Write-Output "Pushing $image"
Invoke-Native 'docker push' { docker push $image }

# The output artifact: what an ECS deploy action reads.
ConvertTo-Json -InputObject @(@{ name = $ContainerName; imageUri = $image }) |
    Set-Content -LiteralPath 'imagedefinitions.json' -Encoding Ascii
Write-Output "Pushed $image; wrote imagedefinitions.json"
