"""Calls to Moka's dealer API (moka-dealer-api.txt): JSON POST, ApiResponse back.

Transport trouble and HTTP 5xx raise ``MokaUnavailable``; an answer that is not an
ApiResponse raises ``MokaAnswerInvalid``. The password travels only in the request
body (DealerAuthentication) and is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from schemas.moka import ApiResponse, CreateMokaPosRequestBody, DealerAuthentication, MokaPosRequest

CREATE_POS_REQUEST_PATH = "/Dealer/CreateMokaPosRequest"


class MokaUnavailable(Exception):
    """Moka could not be reached or answered 5xx."""


class MokaAnswerInvalid(Exception):
    """Moka answered something that is not an ApiResponse."""


@dataclass
class MokaClient:
    base_url: str
    auth: DealerAuthentication
    http: httpx.AsyncClient

    async def create_pos_request(self, request: MokaPosRequest) -> ApiResponse:
        body = CreateMokaPosRequestBody(DealerAuthentication=self.auth, MokaPosRequest=request)
        url = self.base_url.rstrip("/") + CREATE_POS_REQUEST_PATH
        try:
            resp = await self.http.post(
                url,
                content=body.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise MokaUnavailable(f"Moka not reachable: {type(exc).__name__}") from None
        if resp.status_code >= 500:
            raise MokaUnavailable(f"Moka answered HTTP {resp.status_code}")
        try:
            return ApiResponse.model_validate_json(resp.content)
        except ValidationError:
            raise MokaAnswerInvalid(f"HTTP {resp.status_code}: not an ApiResponse") from None
