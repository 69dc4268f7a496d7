"""Point Desk Bridge: an Azure Function app between a service desk and Syskit Point provisioning.

The release's version lives here and nowhere else: pyproject.toml, openapi.json's ``info.version``,
``/api/health``, ``doctor`` and every structured log line read or repeat it (tests/test_versions.py
checks the copies). CHANGELOG.md says what each release changed for the people who run it.
"""

__version__ = "0.2.0"
