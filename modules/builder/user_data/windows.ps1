# First boot of a Windows builder (the launch template's user data, run by EC2Launch): the builder shuts itself down,
# and so terminates (the template's shutdown behaviour), at the deadline its launch gave it in the ec2-action:deadline
# tag: the build's timeout, its registration window and a grace period. The last line of defence against a builder that
# outlives its job when everything else failed (the reaper is the one before it). A pool member carries no deadline (it
# outlives its builds): the script then does nothing.
#
# The tag is read from the instance metadata (IMDSv2; the template makes instance tags readable there), because EC2
# Fleet, which launches every builder, takes no user data per launch.
$ErrorActionPreference = 'Stop'

$Imds = 'http://169.254.169.254/latest'
$DeadlineUri = "$Imds/meta-data/tags/instance/ec2-action:deadline"
$Attempts = 30

function Read-Deadline {
    <#
    .SYNOPSIS
    The deadline tag's value, or $null when the instance has no such tag. Throws when the instance metadata does not
    answer (early in the boot the network may not be up yet: the caller retries).
    #>
    $token = Invoke-RestMethod -Method Put -Uri "$Imds/api/token" -TimeoutSec 2 `
        -Headers @{ 'X-aws-ec2-metadata-token-ttl-seconds' = '300' }
    try {
        return Invoke-RestMethod -Uri $DeadlineUri -TimeoutSec 2 `
            -Headers @{ 'X-aws-ec2-metadata-token' = $token }
    }
    catch {
        $response = $_.Exception.Response
        if ($null -ne $response -and [int]$response.StatusCode -eq 404) {
            return $null
        }
        throw
    }
}

$answered = $false
$deadline = $null
for ($attempt = 1; $attempt -le $Attempts; $attempt++) {
    try {
        $deadline = Read-Deadline
        $answered = $true
        break
    }
    catch {
        Start-Sleep -Seconds 2
    }
}

if (-not $answered) {
    Write-Warning 'ec2-action self-shutdown: the instance metadata did not answer: the reaper ends this builder if it outlives its job'
    exit 1
}
if ($null -eq $deadline) {
    Write-Output 'ec2-action self-shutdown: no ec2-action:deadline tag: a pool member, which outlives its builds'
    exit 0
}

$styles = [Globalization.DateTimeStyles]::AssumeUniversal -bor [Globalization.DateTimeStyles]::AdjustToUniversal
$at = [DateTime]::Parse($deadline, [Globalization.CultureInfo]::InvariantCulture, $styles)
$seconds = [int][Math]::Max(0, [Math]::Ceiling(($at - [DateTime]::UtcNow).TotalSeconds))
Write-Output "ec2-action self-shutdown: shutting down at $deadline (in $seconds seconds)"
shutdown /s /t $seconds /d p:4:1 /c "ec2-action: the build's deadline ($deadline)"
