"""A local HTTPS fake of Azure Resource Manager, driven through the real Azure SDK clients."""

from .credential import StaticCredential
from .records import RecordedRequest
from .server import DEFAULT_TOKEN, FakeArm
from .tls import TestCertificates, make_certificates

__all__ = ["DEFAULT_TOKEN", "FakeArm", "RecordedRequest", "StaticCredential", "TestCertificates", "make_certificates"]
