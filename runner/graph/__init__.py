"""Everything that talks to Microsoft Graph: the httpx client and msal token providers."""

from __future__ import annotations
