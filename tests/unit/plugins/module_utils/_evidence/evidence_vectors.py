# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Hand-written evidence objects for the parser tests, field by field (no encoder is involved).

Multi-byte integers are little-endian, as in SPDM and TDISP. ``h()`` turns a commented hex string
into bytes; repeated digest bytes are written as ``bytes([n]) * size``.
"""

from __future__ import annotations


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# ----------------------------------------------------------------------------------------------------------------
# VCA, SPDM 1.2, sha384 / ecdsa_p384 / measurement sha384 (154 bytes)
# ----------------------------------------------------------------------------------------------------------------
GET_VERSION = h('10 84 00 00')              # SPDMVersion 1.0, GET_VERSION, Param1, Param2
VERSION = h(
    '10 04 00 00'                           # SPDMVersion 1.0, VERSION, Param1, Param2
    '00'                                    # Reserved
    '02'                                    # VersionNumberEntryCount = 2
    '00 11'                                 # entry 0x1100: 1.1
    '00 12'                                 # entry 0x1200: 1.2
)
GET_CAPABILITIES_12 = h(
    '12 e1 00 00'                           # SPDMVersion 1.2, GET_CAPABILITIES
    '00'                                    # Reserved
    '14'                                    # CTExponent = 20
    '00 00'                                 # Reserved2
    'c6 62 00 00'                           # Flags: CERT|CHAL|ENCRYPT|MAC|KEY_EX|HBEAT|KEY_UPD
    '00 10 00 00'                           # DataTransferSize = 4096
    '00 00 01 00'                           # MaxSPDMmsgSize = 65536
)
CAPABILITIES_12 = h(
    '12 61 00 00'                           # SPDMVersion 1.2, CAPABILITIES
    '00'                                    # Reserved
    '0c'                                    # CTExponent = 12
    '00 00'                                 # Reserved2
    'd6 62 00 00'                           # Flags 0x62d6: CERT|CHAL|MEAS_CAP=2 (signed)|ENCRYPT|MAC|KEY_EX|HBEAT|KEY_UPD
    '00 08 00 00'                           # DataTransferSize = 2048
    '00 00 02 00'                           # MaxSPDMmsgSize = 131072
)
NEGOTIATE_ALGORITHMS_12 = h(
    '12 e3 04 00'                           # SPDMVersion 1.2, NEGOTIATE_ALGORITHMS, Param1 = 4 AlgStructs
    '30 00'                                 # Length = 48
    '01'                                    # MeasurementSpecification = DMTF
    '02'                                    # OtherParamsSupport = opaque data format 1
    '90 00 00 00'                           # BaseAsymAlgo = ecdsa_p256 | ecdsa_p384
    '07 00 00 00'                           # BaseHashAlgo = sha256 | sha384 | sha512
    '00 00 00 00 00 00 00 00 00 00 00 00'   # Reserved (12)
    '00'                                    # ExtAsymCount
    '00'                                    # ExtHashCount
    '00'                                    # Reserved
    '00'                                    # MELspecification
    '02 20 18 00'                           # AlgStruct DHE: secp256r1 | secp384r1
    '03 20 06 00'                           # AlgStruct AEAD: aes256gcm | chacha20poly1305
    '04 20 90 00'                           # AlgStruct ReqBaseAsymAlg: ecdsa_p256 | ecdsa_p384
    '05 20 01 00'                           # AlgStruct KeySchedule: SPDM
)
ALGORITHMS_12 = h(
    '12 63 04 00'                           # SPDMVersion 1.2, ALGORITHMS, Param1 = 4 AlgStructs
    '34 00'                                 # Length = 52
    '01'                                    # MeasurementSpecificationSel = DMTF
    '02'                                    # OtherParamsSelection = opaque data format 1
    '04 00 00 00'                           # MeasurementHashAlgo = sha384
    '80 00 00 00'                           # BaseAsymSel = ecdsa_p384
    '02 00 00 00'                           # BaseHashSel = sha384
    '00 00 00 00 00 00 00 00 00 00 00'      # Reserved (11)
    '00'                                    # MELspecificationSel
    '00'                                    # ExtAsymSelCount
    '00'                                    # ExtHashSelCount
    '00 00'                                 # Reserved
    '02 20 10 00'                           # DHE secp384r1
    '03 20 02 00'                           # AEAD aes256gcm
    '04 20 80 00'                           # ReqBaseAsymAlg ecdsa_p384
    '05 20 01 00'                           # KeySchedule SPDM
)
VCA_12 = GET_VERSION + VERSION + GET_CAPABILITIES_12 + CAPABILITIES_12 + NEGOTIATE_ALGORITHMS_12 + ALGORITHMS_12

# Offsets of each message in VCA_12.
OFF_VERSION = len(GET_VERSION)                               # 4
OFF_GET_CAPABILITIES = OFF_VERSION + len(VERSION)            # 14
OFF_CAPABILITIES = OFF_GET_CAPABILITIES + 20                 # 34
OFF_NEGOTIATE = OFF_CAPABILITIES + 20                        # 54
OFF_ALGORITHMS = OFF_NEGOTIATE + 48                          # 102

# VCA, SPDM 1.3 with the SupportedAlgorithms block in CAPABILITIES, sha256 / ecdsa_p256 / raw_only measurements.
VERSION_13 = h(
    '10 04 00 00'                           # SPDMVersion 1.0, VERSION
    '00'                                    # Reserved
    '03'                                    # VersionNumberEntryCount = 3
    '00 12'                                 # 1.2
    '00 13'                                 # 1.3
    '10 13'                                 # 1.3.1 (update version 1) - same major.minor
)
GET_CAPABILITIES_13 = h(
    '13 e1 01 00'                           # SPDMVersion 1.3, GET_CAPABILITIES, Param1 bit 0: SupportedAlgorithms requested
    '00 0a 00 00'                           # Reserved, CTExponent = 10, Reserved2
    '06 00 00 00'                           # Flags: CERT|CHAL
    '00 10 00 00'                           # DataTransferSize
    '00 10 00 00'                           # MaxSPDMmsgSize
)
CAPABILITIES_13 = h(
    '13 61 01 00'                           # SPDMVersion 1.3, CAPABILITIES, Param1 bit 0: SupportedAlgorithms present
    '00 0a 00 00'                           # Reserved, CTExponent, Reserved2
    '0e 00 c0 33'                           # Flags 0x33c0000e: CERT|CHAL|MEAS_CAP=1 (unsigned)|EP_INFO_CAP=3 (reserved)|MEL|EVENT
                                            # |GET_KEY_PAIR_INFO|SET_KEY_PAIR_INFO
    '00 10 00 00'                           # DataTransferSize
    '00 10 00 00'                           # MaxSPDMmsgSize
    # SupportedAlgorithms block (34 bytes): Param1 = 1 AlgStruct, Param2, Length = 34, then the
    # NEGOTIATE_ALGORITHMS body fields.
    '01 00 22 00'                           # Param1, Param2, Length = 34
    '01 00'                                 # MeasurementSpecification, OtherParamsSupport
    '10 00 00 00'                           # BaseAsymAlgo ecdsa_p256
    '01 00 00 00'                           # BaseHashAlgo sha256
    '00 00 00 00 00 00 00 00 00 00 00 00'   # Reserved (12)
    '00 00 00 00'                           # ExtAsymCount, ExtHashCount, Reserved, MELspecification
    '05 20 01 00'                           # AlgStruct KeySchedule
)
NEGOTIATE_ALGORITHMS_13 = h(
    '13 e3 00 00'                           # SPDMVersion 1.3, NEGOTIATE_ALGORITHMS, no AlgStructs
    '24 00'                                 # Length = 36
    '01 00'                                 # MeasurementSpecification, OtherParamsSupport
    '10 00 00 00'                           # BaseAsymAlgo ecdsa_p256
    '01 00 00 00'                           # BaseHashAlgo sha256
    '00 00 00 00 00 00 00 00 00 00 00 00'   # Reserved (12)
    '01 00 00 01'                           # ExtAsymCount = 1, ExtHashCount = 0, Reserved, MELspecification = DMTF
    '07 00 34 12'                           # ExtAsym[0]: RegistryID 7, Reserved, AlgorithmID 0x1234
)
ALGORITHMS_13 = h(
    '13 63 00 00'                           # SPDMVersion 1.3, ALGORITHMS, no AlgStructs
    '24 00'                                 # Length = 36
    '01 00'                                 # MeasurementSpecificationSel DMTF, OtherParamsSelection none
    '01 00 00 00'                           # MeasurementHashAlgo = raw bit stream only
    '10 00 00 00'                           # BaseAsymSel ecdsa_p256
    '01 00 00 00'                           # BaseHashSel sha256
    '00 00 00 00 00 00 00 00 00 00 00'      # Reserved (11)
    '01'                                    # MELspecificationSel DMTF
    '00 00 00 00'                           # ExtAsymSelCount, ExtHashSelCount, Reserved
)
VCA_13 = GET_VERSION + VERSION_13 + GET_CAPABILITIES_13 + CAPABILITIES_13 + NEGOTIATE_ALGORITHMS_13 + ALGORITHMS_13

# VCA, SPDM 1.1 (12-byte GET_CAPABILITIES/CAPABILITIES), sha512 / rsapss_3072 / sha512, no measurements.
VCA_11 = (
    GET_VERSION
    + h('10 04 00 00 00 01 00 11')          # VERSION: 1 entry, 1.1
    + h('11 e1 00 00 00 08 00 00 06 00 00 00')   # GET_CAPABILITIES 1.1: Reserved, CT 8, Reserved2, Flags CERT|CHAL
    + h('11 61 00 00 00 08 00 00 06 00 00 00')   # CAPABILITIES 1.1: Flags CERT|CHAL, MEAS_CAP = 0
    + h('11 e3 00 00 20 00 00 00'           # NEGOTIATE_ALGORITHMS 1.1, Length 32, MeasurementSpecification 0
        '08 00 00 00 04 00 00 00'           # BaseAsymAlgo rsapss_3072, BaseHashAlgo sha512
        '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00')   # Reserved (12), ExtAsymCount, ExtHashCount, Reserved (2)
    + h('11 63 00 00 24 00 00 00'           # ALGORITHMS 1.1, Length 36, MeasurementSpecificationSel 0
        '00 00 00 00 08 00 00 00 04 00 00 00'   # MeasurementHashAlgo 0, BaseAsymSel rsapss_3072, BaseHashSel sha512
        '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00')   # Reserved (12), counts, Reserved (2)
)

# ----------------------------------------------------------------------------------------------------------------
# Measurements, SPDM 1.2: GET_MEASUREMENTS (signed, all) + MEASUREMENTS with one block of every DMTF value type
# ----------------------------------------------------------------------------------------------------------------
REQUESTER_NONCE = bytes(range(0x00, 0x20))
RESPONDER_NONCE = bytes(range(0xa0, 0xc0))
SIGNATURE_96 = bytes([0x5a]) * 96

GET_MEASUREMENTS_12 = (
    h('12 e0 01 ff')                        # SPDMVersion 1.2, GET_MEASUREMENTS, Param1: signature requested, Param2: all
    + REQUESTER_NONCE                       # Nonce (32)
    + h('00')                               # SlotIDParam = 0
)
DEVICE_MODE = h(
    '04 00 00 00'                           # OperationalModeCapabilities: normal
    '04 00 00 00'                           # OperationalModeState: normal
    '0f 00 00 00'                           # DeviceModeCapabilities
    '00 00 00 00'                           # DeviceModeState
)
BLOCKS_12 = [
    # Index, MeasurementSpecification (DMTF), MeasurementSize; DMTFSpecMeasurementValueType, ValueSize; value
    h('01 01 33 00') + h('00 30 00') + bytes([0x01]) * 48,      # immutable ROM, digest
    h('02 01 33 00') + h('01 30 00') + bytes([0x02]) * 48,      # mutable firmware, digest
    h('03 01 33 00') + h('02 30 00') + bytes([0x03]) * 48,      # hardware config, digest
    h('04 01 33 00') + h('03 30 00') + bytes([0x04]) * 48,      # firmware config, digest
    h('05 01 33 00') + h('04 30 00') + bytes([0x05]) * 48,      # measurement manifest, digest
    h('06 01 13 00') + h('85 10 00') + DEVICE_MODE,             # device mode, raw (16 bytes)
    h('07 01 08 00') + h('86 05 00') + b'1.2.3',                # firmware version, raw string
    h('08 01 0b 00') + h('87 08 00') + h('05 00 00 00 00 00 00 00'),   # firmware SVN = 5, raw u64
    h('09 01 33 00') + h('08 30 00') + bytes([0x09]) * 48,      # hash-extended (1.3 type), digest
    h('0a 01 07 00') + h('89 04 00') + b'info',                 # informational, raw
    h('0b 01 06 00') + h('8a 03 00') + h('a1 a2 a3'),           # structured manifest, raw
    h('0c 01 33 00') + h('0b 30 00') + bytes([0x0c]) * 48,      # value type 11: not defined -> "unknown"
    h('0d 02 04 00') + h('01 02 03 04'),                        # MeasurementSpecification 0x02: not DMTF
]
RECORD_12 = b''.join(BLOCKS_12)
RECORD_12_LENGTH = 464                      # 5*55 + 23 + 12 + 15 + 55 + 11 + 10 + 55 + 8
OPAQUE = h('de ad be ef')
MEASUREMENTS_12_HEADER = (
    h('12 60 00 20')                        # SPDMVersion 1.2, MEASUREMENTS, Param1 reserved, Param2: slot 0, content "unchanged"
    + h('0d')                               # NumberOfBlocks = 13
    + h('d0 01 00')                         # MeasurementRecordLength = 464 (3 bytes)
)
MEASUREMENTS_12_TAIL = (
    RESPONDER_NONCE                         # Nonce (32)
    + h('04 00')                            # OpaqueDataLength = 4
    + OPAQUE                                # OpaqueData
)
MEASUREMENTS_12 = MEASUREMENTS_12_HEADER + RECORD_12 + MEASUREMENTS_12_TAIL + SIGNATURE_96
MEAS_OBJECT_12 = GET_MEASUREMENTS_12 + MEASUREMENTS_12
MEAS_12_SIGNED_LENGTH = len(GET_MEASUREMENTS_12) + len(MEASUREMENTS_12) - 96

# SPDM 1.3: RequesterContext in request and response; slot 3; a single-index request (index 2).
REQUESTER_CONTEXT = h('c0 c1 c2 c3 c4 c5 c6 c7')
GET_MEASUREMENTS_13 = (
    h('13 e0 05 02')                        # SPDMVersion 1.3, GET_MEASUREMENTS, Param1: signature | new measurement, Param2: index 2
    + REQUESTER_NONCE
    + h('03')                               # SlotIDParam = 3
    + REQUESTER_CONTEXT                     # RequesterContext (8)
)
MEASUREMENTS_13 = (
    h('13 60 00 13')                        # SPDMVersion 1.3, MEASUREMENTS, Param2: slot 3, content "changed"
    + h('01')                               # NumberOfBlocks = 1
    + h('27 00 00')                         # MeasurementRecordLength = 39
    + h('02 01 23 00') + h('01 20 00') + bytes([0x22]) * 32      # index 2, mutable firmware, sha256 digest
    + RESPONDER_NONCE
    + h('00 00')                            # OpaqueDataLength = 0
    + REQUESTER_CONTEXT                     # RequesterContext echoed
    + bytes([0x6b]) * 64                    # Signature (ecdsa_p256: 64)
)
MEAS_OBJECT_13 = GET_MEASUREMENTS_13 + MEASUREMENTS_13

# SPDM 1.2, no signature requested: the request has neither Nonce nor SlotIDParam; nothing follows OpaqueData.
GET_MEASUREMENTS_UNSIGNED = h('12 e0 00 ff')   # SPDMVersion 1.2, GET_MEASUREMENTS, Param1 0, Param2 all
MEAS_OBJECT_UNSIGNED = (
    GET_MEASUREMENTS_UNSIGNED
    + h('12 60 00 00')                      # SPDMVersion 1.2, MEASUREMENTS, Param1, Param2
    + h('01')                               # NumberOfBlocks = 1
    + h('0f 00 00')                         # MeasurementRecordLength = 15
    + h('f1 01 0b 00') + h('87 08 00') + h('2a 00 00 00 00 00 00 00')   # index 0xf1: SVN 42, raw
    + RESPONDER_NONCE
    + h('00 00')                            # OpaqueDataLength = 0
)

# SPDM 1.2, count-only request (operation 0): Param1 of the response holds the number of indices.
MEAS_OBJECT_COUNT = (
    h('12 e0 00 00')                        # GET_MEASUREMENTS, no signature, operation 0 (count)
    + h('12 60 07 00')                      # MEASUREMENTS, Param1 = 7 indices
    + h('00 00 00 00')                      # NumberOfBlocks 0, MeasurementRecordLength 0
    + RESPONDER_NONCE
    + h('00 00')
)

# SPDM 1.1: the response alone (no request), signature present (rest of the object).
MEAS_RESPONSE_ONLY_11 = (
    h('11 60 00 00')                        # SPDMVersion 1.1, MEASUREMENTS
    + h('01 0b 00 00')                      # NumberOfBlocks 1, MeasurementRecordLength 11
    + h('10 01 07 00') + h('86 04 00') + b'v9.1'   # index 16: firmware version "v9.1", raw
    + RESPONDER_NONCE
    + h('00 00')
    + bytes([0x77]) * 96                    # Signature
)

# ----------------------------------------------------------------------------------------------------------------
# Certificate chain: three minimal DER "certificates" (SEQUENCE { SEQUENCE, SEQUENCE, BIT STRING })
# using the short, 0x81 and 0x82 length forms.
# ----------------------------------------------------------------------------------------------------------------
CERT_SHORT = h(
    '30 0d'                                 # Certificate SEQUENCE, 13 bytes
    '30 03 02 01 01'                        # tbsCertificate SEQUENCE { INTEGER 1 }
    '30 02 05 00'                           # signatureAlgorithm SEQUENCE { NULL }
    '03 02 00 ab'                           # signatureValue BIT STRING, 0 unused bits, 0xab
)
CERT_LONG_81 = (
    h('30 81 d6')                           # Certificate SEQUENCE, 214 bytes (long form, 1 length octet)
    + h('30 81 cb') + h('04 81 c8') + bytes([0x11]) * 200   # tbsCertificate { OCTET STRING (200) }
    + h('30 02 05 00')                      # signatureAlgorithm
    + h('03 02 00 cd')                      # signatureValue
)
CERT_LONG_82 = (
    h('30 82 01 3c')                        # Certificate SEQUENCE, 316 bytes (long form, 2 length octets)
    + h('30 82 01 30') + h('04 82 01 2c') + bytes([0x22]) * 300   # tbsCertificate { OCTET STRING (300) }
    + h('30 02 05 00')                      # signatureAlgorithm
    + h('03 02 00 ef')                      # signatureValue
)
ROOT_HASH_48 = bytes([0x48]) * 48
CHAIN_48 = (
    h('5c 02')                              # Length = 604 = 4 + 48 + 15 + 217 + 320
    + h('00 00')                            # Reserved
    + ROOT_HASH_48                          # RootHash (48)
    + CERT_SHORT + CERT_LONG_81 + CERT_LONG_82
)

# ----------------------------------------------------------------------------------------------------------------
# TDISP interface report: two MMIO ranges, 3 bytes of device-specific info (55 bytes)
# ----------------------------------------------------------------------------------------------------------------
REPORT = h(
    '1b 00'                                 # INTERFACE_INFO 0x1b: no_fw_update | dma_without_pasid | ats | prs
    '00 00'                                 # RESERVED
    '07 80'                                 # MSI_X_MESSAGE_CONTROL 0x8007
    '01 00'                                 # LNR_CONTROL 1
    '02 01 00 00'                           # TPH_CONTROL 0x102
    '02 00 00 00'                           # MMIO_RANGE_COUNT 2
    '00 00 10 00 00 00 00 00'               # MMIO_RANGE[0].FIRST_PAGE 0x100000
    '10 00 00 00'                           # MMIO_RANGE[0].NUMBER_OF_PAGES 16
    '05 00'                                 # MMIO_RANGE[0].RANGE_ATTRIBUTES msix_table | non_tee_mem
    '00 00'                                 # MMIO_RANGE[0].RANGE_ID 0
    '00 20 00 00 01 00 00 00'               # MMIO_RANGE[1].FIRST_PAGE 0x100002000
    '01 00 00 00'                           # MMIO_RANGE[1].NUMBER_OF_PAGES 1
    '0a 00'                                 # MMIO_RANGE[1].RANGE_ATTRIBUTES msix_pba | mem_attr_updatable
    '02 00'                                 # MMIO_RANGE[1].RANGE_ID 2
    '03 00 00 00'                           # DEVICE_SPECIFIC_INFO_LEN 3
    'aa bb cc'                              # DEVICE_SPECIFIC_INFO
)

# ----------------------------------------------------------------------------------------------------------------
# SPDM 1.0: 4-byte GET_CAPABILITIES, 12-byte CAPABILITIES; GET_MEASUREMENTS without SlotIDParam
# ----------------------------------------------------------------------------------------------------------------
VCA_10 = (
    GET_VERSION
    + h('10 04 00 00 00 01 00 10')          # VERSION: 1 entry, 1.0
    + h('10 e1 00 00')                      # GET_CAPABILITIES 1.0: header only
    + h('10 61 00 00 00 05 00 00 16 00 00 00')   # CAPABILITIES 1.0: CTExponent 5, Flags CERT|CHAL|MEAS_CAP=2
    + h('10 e3 00 00 20 00 01 00'           # NEGOTIATE_ALGORITHMS 1.0, Length 32, MeasurementSpecification DMTF
        '80 00 00 00 02 00 00 00'           # BaseAsymAlgo ecdsa_p384, BaseHashAlgo sha384
        '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00')   # Reserved (12), ExtAsymCount, ExtHashCount, Reserved (2)
    + h('10 63 00 00 24 00 01 00'           # ALGORITHMS 1.0, Length 36, MeasurementSpecificationSel DMTF
        '04 00 00 00 80 00 00 00 02 00 00 00'   # MeasurementHashAlgo sha384, BaseAsymSel ecdsa_p384, BaseHashSel sha384
        '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00')   # Reserved (12), counts, Reserved (2)
)
MEAS_OBJECT_10 = (
    h('10 e0 01 01')                        # SPDMVersion 1.0, GET_MEASUREMENTS, signature requested, index 1
    + REQUESTER_NONCE                       # Nonce; no SlotIDParam before 1.1
    + h('10 60 00 00')                      # MEASUREMENTS 1.0
    + h('01 37 00 00')                      # NumberOfBlocks 1, MeasurementRecordLength 55
    + h('01 01 33 00') + h('00 30 00') + bytes([0x10]) * 48      # index 1, immutable ROM digest
    + RESPONDER_NONCE
    + h('00 00')                            # OpaqueDataLength 0
    + bytes([0x96]) * 96                    # Signature
)
