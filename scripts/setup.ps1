# azd's postprovision and postdeploy hook on Windows (azure.yaml): python -m deskbridge setup, in .venv with
# the bridge's runtime packages (requirements.txt, every file's hash checked). Safe to run again by hand:
#   ./scripts/setup.ps1 [--point-admin-client-id ID] [--jira-project KEY] ...
$ErrorActionPreference = 'Stop'
Set-Location (Join-Path $PSScriptRoot '..')
$python = if ($env:PYTHON) { $env:PYTHON } else { 'python' }
$venv = Join-Path '.venv' 'Scripts/python.exe'
if (-not (Test-Path $venv)) {
    & $python -m venv .venv
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
& $venv -c "import azure.identity, requests" 2>$null
if ($LASTEXITCODE -ne 0) {
    & $venv -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
}
& $venv -m deskbridge setup @args
exit $LASTEXITCODE
