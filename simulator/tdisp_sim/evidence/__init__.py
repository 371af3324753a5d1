"""Evidence for simulated devices: a test PKI (``pki``) and encoders for the SPDM/TDISP objects (``build``).

Byte layouts and the bytes a measurement signature covers: docs/evidence.md.
"""

from tdisp_sim.evidence.build import (  # noqa: F401
    DeviceEvidence,
    DeviceProfile,
    MeasurementBlock,
    MmioRange,
    build_cert_chain,
    build_interface_report,
    build_measurements,
    build_vca,
    combined_spdm_prefix,
    measurement_signing_message,
    sign_measurements,
    verify_measurements_signature,
)
from tdisp_sim.evidence.pki import VARIANTS, Identity, TestPki  # noqa: F401
