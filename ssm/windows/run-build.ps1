# Windows step of the build document. Every parameter arrives as an environment variable SSM_<Name>
# (interpolationType ENV_VAR): values are data, never script, whatever quotes or $() they contain.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 3.0

# The step's exit status once it is known (Fail, or 0 at the end): the pooled clean-up in the last finally block
# keeps it whatever the reset command does.
$exitStatus = $null

function Fail([int] $Code, [string] $Message) {
    [Console]::Error.WriteLine("ec2-action: $Message")
    $script:exitStatus = $Code
    exit $Code
}

function Get-StepExitCode([int] $Status) {
    # The step's exit code for a build command that exited with $Status. The SSM Agent reads two exit codes of a
    # Windows step itself: 3010 asks it to reboot the instance and run the whole step again, -1 is its own code for a
    # command stopped before its end. A build command that exits with either fails the step with 1 instead (the
    # message keeps its code); any other code is the step's.
    if ($Status -eq 3010 -or $Status -eq -1) {
        return 1
    }
    return $Status
}

# The artifacts are zipped and unzipped with .NET (System.IO.Compression), not Expand-Archive and Compress-Archive:
# in Windows PowerShell 5.1 these stop at paths of 260 characters, and Compress-Archive writes '\' between folders in
# entry names (unzip on Linux then fails), leaves hidden files and folders out, and cannot zip a file over 2 GB.
Add-Type -AssemblyName System.IO.Compression
Add-Type -AssemblyName System.IO.Compression.FileSystem

function Get-ExtendedPath([string] $Path) {
    # The full path in its \\?\ form, which .NET Framework 4.6.2 and later (every supported Windows Server) opens
    # whatever its length, whether LongPathsEnabled is set or not. Windows takes its parts as they are: no '.', '..'.
    $full = [System.IO.Path]::GetFullPath($Path).TrimEnd('\')
    if ($full.StartsWith('\\?\')) {
        return $full
    }
    if ($full.StartsWith('\\')) {
        return '\\?\UNC\' + $full.Substring(2)
    }
    return '\\?\' + $full
}

function Expand-InputArtifact([string] $ZipFile, [string] $Destination) {
    # Entry names may separate folders with '/' or '\' (Compress-Archive in Windows PowerShell 5.1 writes '\'). An
    # entry that would land outside the destination (a rooted name, a drive, a '..' part) is refused: the job fails.
    $root = Get-ExtendedPath $Destination
    $archive = [System.IO.Compression.ZipFile]::OpenRead($ZipFile)
    try {
        foreach ($entry in $archive.Entries) {
            $name = $entry.FullName
            $parts = @($name -split '[\\/]' | Where-Object { $_ -ne '' -and $_ -ne '.' })
            if ($name -match '^[\\/]' -or $name.Contains(':') -or $parts -contains '..') {
                throw "refusing the zip entry '$name': it points outside the working directory"
            }
            if ($parts.Count -eq 0) {
                continue
            }
            $target = $root + '\' + ($parts -join '\')
            if ($name -match '[\\/]$') {
                [void] [System.IO.Directory]::CreateDirectory($target)
            } else {
                [void] [System.IO.Directory]::CreateDirectory($target.Substring(0, $target.LastIndexOf('\')))
                [System.IO.Compression.ZipFileExtensions]::ExtractToFile($entry, $target, $true)
            }
        }
    } finally {
        $archive.Dispose()
    }
}

function Compress-OutputArtifact([string] $Path, [string] $ZipFile) {
    # A folder is zipped by its contents (hidden and empty folders too), a file by its name; entry names separate
    # folders with '/', as the zip format requires. A link to a folder (junction, symbolic link) is not followed:
    # nothing outside the path is zipped.
    $source = Get-ExtendedPath $Path
    $archive = [System.IO.Compression.ZipFile]::Open($ZipFile, [System.IO.Compression.ZipArchiveMode]::Create)
    try {
        if (-not [System.IO.Directory]::Exists($source)) {
            $name = [System.IO.Path]::GetFileName($source)
            [void] [System.IO.Compression.ZipFileExtensions]::CreateEntryFromFile($archive, $source, $name)
            return
        }
        $folders = New-Object 'System.Collections.Generic.Stack[string]'
        $folders.Push($source)
        while ($folders.Count -gt 0) {
            foreach ($item in [System.IO.Directory]::EnumerateFileSystemEntries($folders.Pop())) {
                $name = $item.Substring($source.Length + 1).Replace('\', '/')
                $attributes = [System.IO.File]::GetAttributes($item)
                if (($attributes -band [System.IO.FileAttributes]::Directory) -eq 0) {
                    [void] [System.IO.Compression.ZipFileExtensions]::CreateEntryFromFile($archive, $item, $name)
                } elseif (($attributes -band [System.IO.FileAttributes]::ReparsePoint) -eq 0) {
                    [void] $archive.CreateEntry("$name/")
                    $folders.Push($item)
                } else {
                    Write-Output "ec2-action: not following the link to a folder '$name' in OutputArtifactPath"
                }
            }
        }
    } finally {
        $archive.Dispose()
    }
}

function Remove-Tree([string] $Path) {
    # Delete a folder and everything in it, whatever the length of its paths. Read-only files (a git checkout's
    # objects) are made writable first; a link to a folder (junction, symbolic link) is removed, never followed
    # (Remove-Item -Recurse in Windows PowerShell 5.1 follows junctions).
    $root = Get-ExtendedPath $Path
    if ([System.IO.File]::Exists($root)) {
        [System.IO.File]::SetAttributes($root, [System.IO.FileAttributes]::Normal)
        [System.IO.File]::Delete($root)
        return
    }
    if (-not [System.IO.Directory]::Exists($root)) {
        return
    }
    $readOnly = [System.IO.FileAttributes]::ReadOnly
    $link = [System.IO.FileAttributes]::ReparsePoint
    if (([System.IO.File]::GetAttributes($root) -band $link) -ne 0) {
        [System.IO.Directory]::Delete($root, $false)
        return
    }
    $folders = New-Object 'System.Collections.Generic.Stack[string]'
    $folders.Push($root)
    while ($folders.Count -gt 0) {
        foreach ($item in [System.IO.Directory]::EnumerateFileSystemEntries($folders.Pop())) {
            $attributes = [System.IO.File]::GetAttributes($item)
            if (($attributes -band $readOnly) -ne 0) {
                $writable = $attributes -bxor $readOnly
                [System.IO.File]::SetAttributes($item, $writable)
            }
            if (($attributes -band $link) -eq 0 -and ($attributes -band [System.IO.FileAttributes]::Directory) -ne 0) {
                $folders.Push($item)
            }
        }
    }
    # .NET Framework's recursive delete removes a reparse point itself without entering it.
    [System.IO.Directory]::Delete($root, $true)
}

if ($null -eq $env:SSM_JobId) {
    Fail 64 'the SSM Agent did not pass parameters as environment variables; SSM Agent 3.3.2746.0 or newer is required'
}

# The environment the build command sees.
$env:JobId = $env:SSM_JobId
$env:PipelineName = $env:SSM_PipelineName
$env:PipelineExecutionId = $env:SSM_PipelineExecutionId
$env:PipelineArn = $env:SSM_PipelineArn

# Every job's default workspace is a folder of this root named by its job id.
$workspaceRoot = Join-Path $env:SystemDrive 'codepipeline-ec2-action'
$defaultWorkspace = Join-Path $workspaceRoot $env:SSM_JobId
if ([string]::IsNullOrEmpty($env:SSM_WorkingDirectory)) {
    $workspace = $defaultWorkspace
} elseif ([System.IO.Path]::IsPathRooted($env:SSM_WorkingDirectory)) {
    $workspace = $env:SSM_WorkingDirectory
} else {
    $workspace = Join-Path $defaultWorkspace $env:SSM_WorkingDirectory
}
$env:WORKSPACE = $workspace

# A pooled instance (Pooled=true) runs one job after another: each job's workspace is removed when it ends, and the
# reset command (ResetCommand) runs after the upload. When either fails, a last line on stderr asks the orchestrator
# to retire the instance; the step's exit status stays the build's. An absolute WorkingDirectory is the user's own
# place and is not removed.
$pooled = $env:SSM_Pooled -eq 'true'
$retireReason = ''

$scratch = Join-Path ([System.IO.Path]::GetTempPath()) ("ec2-action-" + [guid]::NewGuid())
New-Item -ItemType Directory -Force -Path $scratch | Out-Null
try {
    if ($pooled -and [System.IO.Directory]::Exists($workspaceRoot)) {
        # Workspaces other jobs left behind (a step stopped before its clean-up ran) never reach this job.
        foreach ($leftover in @([System.IO.Directory]::EnumerateFileSystemEntries($workspaceRoot))) {
            if ($leftover -ne $defaultWorkspace) {
                Write-Output "ec2-action: removing the leftover workspace $leftover"
                try {
                    Remove-Tree $leftover
                } catch {
                    $retireReason = "cannot remove the leftover workspace $leftover"
                }
            }
        }
    }
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
            Expand-InputArtifact $inputZip $workspace
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
        Fail (Get-StepExitCode $status) "the build command exited with code $status"
    }
    Write-Output 'ec2-action: the build command succeeded'

    if (-not [string]::IsNullOrEmpty($env:SSM_OutputArtifactPath)) {
        $output = Get-ExtendedPath (Join-Path $workspace $env:SSM_OutputArtifactPath)
        if (-not ([System.IO.File]::Exists($output) -or [System.IO.Directory]::Exists($output))) {
            Fail 67 "OutputArtifactPath '$env:SSM_OutputArtifactPath' does not exist in $workspace after the build"
        }
        $outputZip = Join-Path $scratch 'output.zip'
        try {
            Compress-OutputArtifact $output $outputZip
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
    $exitStatus = 0
} finally {
    Set-Location -LiteralPath ($env:SystemDrive + '\')
    if ($pooled) {
        try {
            Remove-Tree $defaultWorkspace
        } catch {
            if ($retireReason -eq '') {
                $retireReason = "cannot remove the workspace ${defaultWorkspace}: $_"
            }
        }
        if (-not [string]::IsNullOrEmpty($env:SSM_ResetCommand)) {
            $resetFile = Join-Path $scratch 'reset-command.ps1'
            Set-Content -LiteralPath $resetFile -Value $env:SSM_ResetCommand -Encoding UTF8
            Write-Output 'ec2-action: running the reset command'
            & powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "`$ErrorActionPreference = 'Stop'; & '$($resetFile.Replace("'", "''"))'; if (`$LASTEXITCODE) { exit `$LASTEXITCODE }"
            $resetStatus = $LASTEXITCODE
            if ($resetStatus -ne 0) {
                $retireReason = "the reset command exited $resetStatus"
            }
        }
        if ($retireReason -ne '') {
            [Console]::Error.WriteLine("ec2-action: retire-instance: $retireReason")
        }
    }
    Remove-Item -LiteralPath $scratch -Recurse -Force -ErrorAction SilentlyContinue
    if ($pooled -and $null -ne $exitStatus) {
        # The reset command's exit code must not become the step's.
        exit $exitStatus
    }
}
