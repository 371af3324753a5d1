# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The SPDM numbers the evidence parsers read against (private; may change at any time).

Request/response codes, the versions whose layouts ``spdm`` knows, the algorithm tables with
their sizes, the capability flags and the measurement value types, from DMTF DSP0274 (SPDM) 1.2.1
and 1.3.0 and libspdm ``include/industry_standard/spdm.h``; each table names its source.
"""

from __future__ import annotations

import typing as t

# SPDM request/response codes (DSP0274 "SPDM request codes" / "SPDM response codes" tables).
GET_VERSION = 0x84
VERSION = 0x04
GET_CAPABILITIES = 0xE1
CAPABILITIES = 0x61
NEGOTIATE_ALGORITHMS = 0xE3
ALGORITHMS = 0x63
GET_MEASUREMENTS = 0xE0
MEASUREMENTS = 0x60
ERROR = 0x7F

# SPDM versions whose message layouts this parser knows (SPDMVersion byte: major << 4 | minor).
SUPPORTED_VERSIONS = (0x10, 0x11, 0x12, 0x13)

NONCE_SIZE = 32             # DSP0274 1.0+: Nonce is 32 bytes
REQUESTER_CONTEXT_SIZE = 8  # DSP0274 1.3: RequesterContext is 8 bytes
MAX_OPAQUE_SIZE = 1024      # DSP0274: OpaqueDataLength shall not exceed 1024

# BaseHashAlgo / BaseHashSel bits (DSP0274 NEGOTIATE_ALGORITHMS table; libspdm SPDM_ALGORITHMS_BASE_HASH_ALGO_*).
BASE_HASH_ALGOS: t.Tuple[t.Tuple[int, str, int], ...] = (
    (0x01, 'sha256', 32),
    (0x02, 'sha384', 48),
    (0x04, 'sha512', 64),
    (0x08, 'sha3_256', 32),
    (0x10, 'sha3_384', 48),
    (0x20, 'sha3_512', 64),
    (0x40, 'sm3_256', 32),      # 1.2
)

# MeasurementHashAlgo bits (DSP0274 ALGORITHMS table; libspdm SPDM_ALGORITHMS_MEASUREMENT_HASH_ALGO_*).
MEASUREMENT_HASH_ALGOS: t.Tuple[t.Tuple[int, str, t.Optional[int]], ...] = (
    (0x01, 'raw_only', None),   # raw bit streams only, no digest
    (0x02, 'sha256', 32),
    (0x04, 'sha384', 48),
    (0x08, 'sha512', 64),
    (0x10, 'sha3_256', 32),
    (0x20, 'sha3_384', 48),
    (0x40, 'sha3_512', 64),
    (0x80, 'sm3_256', 32),      # 1.2
)

# BaseAsymAlgo / BaseAsymSel bits and the signature sizes (libspdm libspdm_get_asym_signature_size:
# RSA = modulus size, ECDSA/SM2 = r||s, EdDSA = R||S).
BASE_ASYM_ALGOS: t.Tuple[t.Tuple[int, str, int], ...] = (
    (0x001, 'rsassa_2048', 256),
    (0x002, 'rsapss_2048', 256),
    (0x004, 'rsassa_3072', 384),
    (0x008, 'rsapss_3072', 384),
    (0x010, 'ecdsa_p256', 64),
    (0x020, 'rsassa_4096', 512),
    (0x040, 'rsapss_4096', 512),
    (0x080, 'ecdsa_p384', 96),
    (0x100, 'ecdsa_p521', 132),
    (0x200, 'sm2_p256', 64),        # 1.2
    (0x400, 'eddsa_ed25519', 64),   # 1.2
    (0x800, 'eddsa_ed448', 114),    # 1.2
)

# MeasurementSpecification bit 0 = DMTF (DSP0274 "MeasurementSpecification field format").
MEASUREMENT_SPEC_DMTF = 0x01

# DMTFSpecMeasurementValueType bits [6:0] (DSP0274 1.3 "DMTF measurement specification format";
# libspdm SPDM_MEASUREMENT_BLOCK_MEASUREMENT_TYPE_*). Bit 7 = 1: raw bit stream, 0: digest.
MEASUREMENT_VALUE_TYPES: t.Dict[int, str] = {
    0: 'immutable_rom',
    1: 'mutable_firmware',
    2: 'hardware_config',
    3: 'firmware_config',
    4: 'measurement_manifest',
    5: 'device_mode',
    6: 'firmware_version',
    7: 'firmware_svn',
    8: 'hash_extended',         # 1.3
    9: 'informational',         # 1.3
    10: 'structured_manifest',  # 1.3
}
VALUE_TYPE_RAW_BIT = 0x80
SVN_SIZE = 8            # DSP0274 1.2: the mutable firmware SVN is an 8-byte little-endian integer
DEVICE_MODE_SIZE = 16   # DSP0274 1.2: four 32-bit fields (libspdm spdm_measurements_device_mode_t)

# CAPABILITIES Flags (DSP0274 "Flag fields definitions for the Responder"; libspdm
# SPDM_GET_CAPABILITIES_RESPONSE_FLAGS_*): single-bit flags, name -> bit number.
RESPONDER_BOOL_FLAGS: t.Tuple[t.Tuple[str, int], ...] = (
    ('cache_cap', 0),
    ('cert_cap', 1),
    ('chal_cap', 2),
    ('meas_fresh_cap', 5),
    ('encrypt_cap', 6),
    ('mac_cap', 7),
    ('mut_auth_cap', 8),
    ('key_ex_cap', 9),
    ('encap_cap', 12),
    ('hbeat_cap', 13),
    ('key_upd_cap', 14),
    ('handshake_in_the_clear_cap', 15),
    ('pub_key_id_cap', 16),
    ('chunk_cap', 17),              # 1.2
    ('alias_cert_cap', 18),         # 1.2
    ('set_cert_cap', 19),           # 1.2.1
    ('csr_cap', 20),                # 1.2.1
    ('cert_install_reset_cap', 21),  # 1.2.1
    ('mel_cap', 24),                # 1.3
    ('event_cap', 25),              # 1.3
    ('get_key_pair_info_cap', 28),  # 1.3
    ('set_key_pair_info_cap', 29),  # 1.3
)
# Two-bit fields: name -> (shift, names of the values 0..3; None marks a reserved value).
MEAS_CAP = (3, ('none', 'unsigned', 'signed', None))
PSK_CAP = (10, ('none', 'psk', 'psk_with_context', 'reserved'))
EP_INFO_CAP = (22, ('none', 'unsigned', 'signed', 'reserved'))          # 1.3
MULTI_KEY_CAP = (26, ('none', 'only', 'negotiated', 'reserved'))        # 1.3

# GET_MEASUREMENTS Param1 request attributes (DSP0274 "GET_MEASUREMENTS request attributes").
ATTR_SIGNATURE_REQUESTED = 0x01
ATTR_RAW_BITSTREAM_REQUESTED = 0x02     # 1.2
ATTR_NEW_MEASUREMENT_REQUESTED = 0x04   # 1.3
OPERATION_ALL = 0xFF
OPERATION_COUNT = 0x00

# MEASUREMENTS Param2 bits [5:4] (1.2+): content changed.
CONTENT_CHANGED = ('unknown', 'changed', 'unchanged', 'reserved')
