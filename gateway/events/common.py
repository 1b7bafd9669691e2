"""Value types shared by the event families: channels, people, identifiers, attachments."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base of every event model: immutable, and unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Channel(StrEnum):
    EMAIL = "email"
    WEBFORM = "webform"
    SMS = "sms"
    POSTAL = "postal"


class IdentifierScheme(StrEnum):
    """National health-insurance / social-security numbers the normalizers recognise."""

    CA_QC_RAMQ = "ca-qc-ramq"  # Québec health-insurance number (NAM): 4 letters + 8 digits
    FR_NIR = "fr-nir"  # French social-security number: 13 digits + 2-digit key
    BE_NISS = "be-niss"  # Belgian national number: 11 digits, mod-97 check


class Person(Frozen):
    """Who filed a complaint (complainant) or for whom it was filed (represented person)."""

    name: str | None = None
    email: str | None = None
    email_verified: bool = False
    phone: str | None = Field(default=None, description="E.164, e.g. +15145551234")
    phone_verified: bool = False
    postal_address: str | None = Field(default=None, description="the address block, as text")
    anonymous: bool = False


class RepresentedPerson(Person):
    """The person a complaint is filed for, when someone acts on their behalf."""

    relationship: str | None = Field(
        default=None, description="e.g. parent, guardian, mandatary, lawyer, relative"
    )


class IdentifierOwner(StrEnum):
    COMPLAINANT = "complainant"
    REPRESENTED_PERSON = "represented_person"


class Identifier(Frozen):
    """An identifier found in the text or fields. ``valid`` is false when its check fails."""

    scheme: IdentifierScheme
    value: str = Field(description="normalised: no spaces, upper case")
    valid: bool
    owner: IdentifierOwner = IdentifierOwner.COMPLAINANT
    repaired: bool = Field(
        default=False, description="OCR look-alikes (O/0, I/1, S/5) were corrected by position"
    )


class AttachmentStatus(StrEnum):
    STORED = "stored"
    REJECTED = "rejected"


class Attachment(Frozen):
    """A file that came with the input. Bytes are in the claim-check store at ``uri``."""

    filename: str
    media_type: str
    size: int = Field(ge=0)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    uri: str | None = None
    status: AttachmentStatus = AttachmentStatus.STORED
    rejection_reason: str | None = Field(
        default=None, description="why the file was not stored (e.g. over the size limit)"
    )
    derived_from: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 of the attachment this one was made from (the searchable PDF of a "
        "scanned letter: its pages with the OCR text laid over them)",
    )


class SourceMessage(Frozen):
    """The raw input: its own id at the source and where its raw copy is kept."""

    id: str = Field(description="Message-ID, idempotency key, file hash...")
    uri: str | None = Field(default=None, description="claim-check URI of the raw copy")


class Due(Frozen):
    """The office's promised dates for this complaint, under the named policy."""

    acknowledge_by: date
    respond_by: date
    policy: str
