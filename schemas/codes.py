"""MKK MKS Online result codes and what a client does on each, kept as data.

Descriptions are the guide's own words (Turkish for MKS business codes, English for
the gateway's OI codes, as printed in §7). Each code maps to one `Action`:

- DONE: the call succeeded (or reached a final, successful outcome).
- PENDING: the report is still being made; ask again later (§6.1 RP020-RP023).
- RETRY_LATER: a transient failure on MKK's side; the same call may be repeated later,
  with a new senderReference if the answer carried a messageId (§3.2.2).
- REAUTH: the token was refused; get a new token once, then repeat.
- TERMINAL: retrying the same request cannot succeed; a person or a new request is needed.

Where the guide leaves the client's reaction open, the choice is explained beside
the code. `lookup()` maps an unknown code to TERMINAL and says so (`known=False`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    DONE = "DONE"
    PENDING = "PENDING"
    RETRY_LATER = "RETRY_LATER"
    REAUTH = "REAUTH"
    TERMINAL = "TERMINAL"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    code: str
    description: str
    action: Action
    source: str  # where the code is documented
    known: bool = True


D, P, R, A, T = Action.DONE, Action.PENDING, Action.RETRY_LATER, Action.REAUTH, Action.TERMINAL

# (code, description, action, source)
_TABLE: tuple[tuple[str, str, Action, str], ...] = (
    # Success (§3.2.7, §5.1.7, §6.1.7, §6.2.7) and the gateway's "no error" (§7).
    ("0000", "BAŞARILI", D, "§5.1.7"),
    ("OI000", "No error.", D, "§7"),
    # Gateway codes (§7). No messageId: the message never reached MKS.
    # OI001 is unspecific; treated as transient, bounded by the caller's retry budget.
    ("OI001", "Generic Error!", R, "§7"),
    ("OI002", "Schema Validation Error", T, "§7"),
    ("OI003", "Service unavailable.", R, "§7"),
    ("OI004", "Service unavailable.", R, "§7"),
    ("OI005", "Invalid backend:", R, "§7"),
    # The gateway refuses a missing, expired or foreign token by policy: fetch a new
    # token once (the sandbox answers a bad token with HTTP 401 and OI006).
    ("OI006", "Access denied by policy.", A, "§7"),
    ("OI010", "No certificate found for the sender member!", T, "§7"),
    ("OI011", "Unknown canonicalization algorithm for SignedInfo node set.", T, "§7"),
    ("OI012", "Signature verification failed!", T, "§7"),
    ("OI013", "No transformation algorithm set for Reference.", T, "§7"),
    ("OI014", "Unknown transformation algorithm for Reference.", T, "§7"),
    ("OI015", "Hash value does not match for reference.", T, "§7"),
    ("OI016", "Request not signed.", T, "§7"),
    ("OI020", "Service not defined.", T, "§7"),
    ("OI021", "Sender member not defined.", T, "§7"),
    ("OI030", "Service error.", R, "§7"),
    ("OI031", "Request cannot be processed due to internal error.", R, "§7"),
    ("OI032", "No route defined for the member!", T, "§7"),
    ("OI040", "Found no messages!", R, "§7"),
    ("OI044", "Message query result cannot be processed!", R, "§7"),
    ("OI045", "Service cannot be queried!", R, "§7"),
    # Backend system codes (§7).
    ("SP001", "Eksik Parametre", T, "§7"),
    ("XS013", "Sistem hatası oluştu", R, "§7"),
    ("SYS0", "Sistem hatası oluştu", R, "§7"),
    # Report business codes (§5.1.7, §6.1.7, §6.2.7).
    (
        "RP003",
        "Sizin veya başka bir üyenin başlatmış olduğu, işlemi devam eden raporunuz "
        "var. Lütfen işlem bittikten sonra tekrar deneyiniz.",
        R,
        "§5.1.7",
    ),
    ("RP015", "Bu işlemi gerçekleştirmek için yetkiniz bulunmamaktadır.", T, "§6.2.7"),
    ("RP018", "Geçersiz refId değeri girilmiştir.", T, "§6.1.7"),
    ("RP020", "Rapor kuyruğa eklenmek için beklemektedir.", P, "§6.1.7"),
    ("RP021", "Rapor kuyruğa eklenmiştir.", P, "§6.1.7"),
    ("RP022", "Rapor kuyrukta beklemektedir.", P, "§6.1.7"),
    ("RP023", "Rapor hazırlanmaktadır.", P, "§6.1.7"),
    # The report failed at MKK: this refId will never be ready; a new request is needed.
    ("RP025", "Rapor işlenirken bir hata alınmıştır.", T, "§6.1.7"),
    # A final, successful outcome: the query matched no rows (an empty report, no files).
    ("RP026", "Rapor sorgusu veri içermemektedir.", D, "§6.1.7"),
    ("RP036", "Geçersiz üye kodu girilmiştir.", T, "§5.1.7"),
    ("RP037", "Geçersiz hesap sınıfı değeri girilmiştir.", T, "§5.1.7"),
    ("RP038", "Geçersiz ISIN değeri girilmiştir.", T, "§5.1.7"),
    # Authorisation and message-record codes (§3.2.7, repeated in §5.1.7, §6.1.7, §6.2.7).
    ("RP039", "Gönderen kullanıcı sistemde tanımlı olmalıdır", T, "§3.2.7"),
    ("RP040", "Kullanıcı durumu “İşlem Yapamaz” ise MKS sisteminde işlem yapılamaz", T, "§3.2.7"),
    (
        "RP041",
        "Mesajı gönderen kullanıcının “İşlem Durumu” Yetkili Kullanıcı Listesinde "
        "“Aktif” olmalıdır",
        T,
        "§3.2.7",
    ),
    ("RP042", "Mesajın işlevi sistemde tanımlı olmalıdır", T, "§3.2.7"),
    ("RP043", "Gönderen Üye kodu tanımlı olmalıdır", T, "§3.2.7"),
    # Reused senderReference: the earlier message with this reference reached MKS;
    # never resend blindly (it may have been accepted), reconcile instead.
    ("RP045", "Mesajı gönderenin referansı tanımlı olmamalıdır", T, "§3.2.7"),
    ("RP046", "Mesaj kaydı yaratırken gönderen bilgisi boş olmamalıdır", T, "§3.2.7"),
    ("RP047", "Mesaj kaydı yaratırken gönderen mesaj tipi bilgisi boş olmamalıdır", T, "§3.2.7"),
    (
        "RP048",
        "Mesajı gönderen kullanıcının belirtilen üyede o mesaj ve işlevi için yetkisi "
        "olması lazımdır.",
        T,
        "§3.2.7",
    ),
    ("RP049", "Mevcut kanal üzerinden erişim izni yoktur!", T, "§3.2.7"),
    # Other codes seen in the guide's examples and the FAQ.
    ("MF04", "Mesajı Gönderen Referansı Üye bazında -unique- olmalıdır.", T, "§9.2, FAQ 18"),
    # FAQ 16 names MY04 only as "yetki hatası" (the member code lacks the message function).
    ("MY04", "Yetki hatası", T, "FAQ 16"),
    ("BS040", "Kayıt bulunamamıştır.", T, "§6.2.6"),
    # The token service's failure body (§3.2.6) carries this error_code for a wrong
    # user name or password. Never retry: three wrong passwords lock the user (FAQ 15).
    ("0x00d30003", "Geçersiz kullanıcı adı veya şifre!", T, "§3.2.6"),
)

CODES: dict[str, CodeInfo] = {c: CodeInfo(c, d, a, s) for c, d, a, s in _TABLE}

# Status codes of a report still being made (§6.1.7), in the order they pass.
PENDING_REPORT_CODES: tuple[str, ...] = ("RP020", "RP021", "RP022", "RP023")

UNKNOWN_DESCRIPTION = "Unknown code: not in the MKS Online guide; treated as terminal."


def lookup(code: str) -> CodeInfo:
    """The code's description and action; an unknown code is TERMINAL with `known=False`."""
    info = CODES.get(code.strip())
    if info is not None:
        return info
    return CodeInfo(code, UNKNOWN_DESCRIPTION, Action.TERMINAL, "none", known=False)


def action_for(code: str) -> Action:
    return lookup(code).action


def description(code: str) -> str:
    return lookup(code).description


# kopru's own codes on ReportFailed / TokenUnavailable, where no MKK code applies. The
# operator's way forward is named with each (`kopru report resolve|retry`, `kopru auth reset`).
KOPRU_CODES: dict[str, str] = {
    "KOPRU_AMBIGUOUS": (
        "the balance-report answer was lost after MKK used the senderReference (RP045, "
        "FAQ 18): `kopru report resolve ID --ref-id REF` or `kopru report retry ID`"
    ),
    "KOPRU_GAVE_UP": "MKK kept answering a transient code; `kopru report retry ID` sends anew",
    "KOPRU_INVALID_REQUEST": "the request breaks a field rule of §5.1.2; not sent to MKK",
    "KOPRU_UNKNOWN_USER": (
        "auth-token has no password for this (member, sender); add the user to its "
        "settings (KOPRU_MKK_USERS__<USER>__MEMBER and its password)"
    ),
    "KOPRU_NO_PASSWORD": "the user's password secret is missing or empty",
    "KOPRU_AUTH_UNCONFIRMED": "attempts with this password had no known outcome (FAQ 15)",
    "KOPRU_DEADLINE": "the report was not ready within the refId's 24 hours (§5.1.5)",
}
