# Windows step of the build document. Every parameter arrives as an environment variable SSM_<Name>
# (interpolationType ENV_VAR): values are data, never script, whatever quotes or $() they contain.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 3.0

function Fail([int] $Code, [string] $Message) {
    [Console]::Error.WriteLine("ec2-action: $Message")
    exit $Code
}

if ($null -eq $env:SSM_JobId) {
    Fail 64 'the SSM Agent did not pass parameters as environment variables; SSM Agent 3.3.2746.0 or newer is required'
}

# The environment the build command sees.
$env:JobId = $env:SSM_JobId
$env:PipelineName = $env:SSM_PipelineName
$env:PipelineExecutionId = $env:SSM_PipelineExecutionId
$env:PipelineArn = $env:SSM_PipelineArn

$defaultWorkspace = Join-Path $env:SystemDrive (Join-Path 'codepipeline-ec2-action' $env:SSM_JobId)
if ([string]::IsNullOrEmpty($env:SSM_WorkingDirectory)) {
    $workspace = $defaultWorkspace
} elseif ([System.IO.Path]::IsPathRooted($env:SSM_WorkingDirectory)) {
    $workspace = $env:SSM_WorkingDirectory
} else {
    $workspace = Join-Path $defaultWorkspace $env:SSM_WorkingDirectory
}
$env:WORKSPACE = $workspace

$scratch = Join-Path ([System.IO.Path]::GetTempPath()) ("ec2-action-" + [guid]::NewGuid())
New-Item -ItemType Directory -Force -Path $scratch | Out-Null
try {
    try {
        New-Item -ItemType Directory -Force -LiteralPath $workspace | Out-Null
    } catch {
        Fail 65 "cannot create the working directory '$workspace': $_"
    }
    Set-Location -LiteralPath $workspace
    Write-Output "ec2-action: job $env:JobId of pipeline '$env:PipelineName' in $workspace"

    if (-not [string]::IsNullOrEmpty($env:SSM_InputBucket)) {
        Write-Output "ec2-action: downloading the input artifact s3://$env:SSM_InputBucket/$env:SSM_InputKey"
        $inputZip = Join-Path $scratch 'input.zip'
        try {
            Read-S3Object -BucketName $env:SSM_InputBucket -Key $env:SSM_InputKey -File $inputZip | Out-Null
        } catch {
            Fail 66 "cannot download the input artifact s3://$env:SSM_InputBucket/$env:SSM_InputKey (does the builder role allow s3:GetObject and kms:Decrypt on it?): $_"
        }
        try {
            Expand-Archive -LiteralPath $inputZip -DestinationPath $workspace -Force
        } catch {
            Fail 66 "the input artifact is not a valid zip file: $_"
        }
    }

    $commandFile = Join-Path $scratch 'build-command.ps1'
    Set-Content -LiteralPath $commandFile -Value $env:SSM_Command -Encoding UTF8
    Write-Output 'ec2-action: running the build command'
    # A child PowerShell runs the command with the same stop-on-error preference; its exit code is checked.
    & powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "`$ErrorActionPreference = 'Stop'; & '$($commandFile.Replace("'", "''"))'; if (`$LASTEXITCODE) { exit `$LASTEXITCODE }"
    $status = $LASTEXITCODE
    if ($status -ne 0) {
        Fail $status "the build command exited with code $status"
    }
    Write-Output 'ec2-action: the build command succeeded'

    if (-not [string]::IsNullOrEmpty($env:SSM_OutputArtifactPath)) {
        $output = Join-Path $workspace $env:SSM_OutputArtifactPath
        if (-not (Test-Path -LiteralPath $output)) {
            Fail 67 "OutputArtifactPath '$env:SSM_OutputArtifactPath' does not exist in $workspace after the build"
        }
        $outputZip = Join-Path $scratch 'output.zip'
        try {
            if (Test-Path -LiteralPath $output -PathType Container) {
                Compress-Archive -Path (Join-Path $output '*') -DestinationPath $outputZip -Force
            } else {
                Compress-Archive -LiteralPath $output -DestinationPath $outputZip -Force
            }
        } catch {
            Fail 68 "cannot zip OutputArtifactPath '$env:SSM_OutputArtifactPath': $_"
        }
        $upload = @{
            BucketName           = $env:SSM_OutputBucket
            Key                  = $env:SSM_OutputKey
            File                 = $outputZip
            ServerSideEncryption = 'aws:kms'
        }
        if (-not [string]::IsNullOrEmpty($env:SSM_KmsKeyId)) {
            $upload['ServerSideEncryptionKeyManagementServiceKeyId'] = $env:SSM_KmsKeyId
        }
        Write-Output "ec2-action: uploading the output artifact to s3://$env:SSM_OutputBucket/$env:SSM_OutputKey"
        try {
            Write-S3Object @upload | Out-Null
        } catch {
            Fail 69 "cannot upload the output artifact to s3://$env:SSM_OutputBucket/$env:SSM_OutputKey (does the builder role allow s3:PutObject and kms:GenerateDataKey on it?): $_"
        }
    }
    Write-Output 'ec2-action: done'
} finally {
    Set-Location -LiteralPath ($env:SystemDrive + '\')
    Remove-Item -LiteralPath $scratch -Recurse -Force -ErrorAction SilentlyContinue
}
