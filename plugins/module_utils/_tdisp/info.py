# Copyright: coco.tdisp contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``tdisp_device_info`` gatherer (private; may change at any time).

Read-only: TSMs and devices through ``device.Reader``; evidence (optional) through the
evidence client and the parsers of ``_evidence``, imported only when asked for. A malformed
evidence object is reported for its device and never fails another device or the task.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import os
import typing as t

from ansible_collections.coco.tdisp.plugins.module_utils._errors import TdispError
from ansible_collections.coco.tdisp.plugins.module_utils._abi.device import Reader
from ansible_collections.coco.tdisp.plugins.module_utils._abi.names import CLASS_TSM, TSM_PCI_MODE, check_bdf, check_tsm, format_id
from ansible_collections.coco.tdisp.plugins.module_utils._abi.sysfs import PathEscape, Sysfs
from ansible_collections.coco.tdisp.plugins.module_utils._evidence.constants import CERT_SLOTS, TYPE_NAMES, TYPE_NUMBERS


def _norm_id(value: t.Any, what: str) -> str:
    text = str(value).strip().lower()
    if text.startswith('0x'):
        text = text[2:]
    if not text or len(text) > 8 or any(c not in '0123456789abcdef' for c in text):
        raise TdispError('%r is not a hexadecimal PCI id' % (value,), attribute=what, remedy='write it like 0x10de or 10de')
    return format_id(what, int(text, 16))


def _is_bridge(klass: t.Any) -> bool:
    """PCI base class 0x06: host, PCI-to-PCI and other bridges (root ports among them)."""
    return isinstance(klass, str) and klass.startswith('0x06')


def parse_nonce(value: t.Optional[str]) -> t.Optional[bytes]:
    if value is None or value == '':
        return None
    try:
        data = binascii.unhexlify(value.strip())
    except (binascii.Error, ValueError, TypeError):
        raise TdispError('nonce is not an even-length hexadecimal string', attribute='nonce',
                         remedy='pass the nonce as hex, e.g. 00112233...')
    return data


def gather(sysfs: Sysfs, bdfs: t.Optional[t.Sequence[str]] = None, vendor: t.Optional[str] = None, device: t.Optional[str] = None,
           tsm: t.Optional[str] = None, evidence: t.Optional[t.Mapping[str, t.Any]] = None,
           evidence_factory: t.Optional[t.Callable[[], t.Any]] = None, all_devices: bool = False) -> t.Dict[str, t.Any]:
    """Return ``{tsms, devices, missing, ignored}``.

    ``bdfs`` restricts (and may name devices without a ``tsm/`` directory); without it every
    device with a ``tsm/`` directory is listed, or with ``all_devices`` every PCI endpoint
    (bridges, base class 0x06, are left out). ``vendor``, ``device`` and ``tsm`` filter.
    ``evidence`` (``types``, ``nonce`` bytes, ``max_object_size``) adds an ``evidence`` section
    to each listed device."""
    wanted = None
    if bdfs is not None:
        wanted = []
        for i, b in enumerate(bdfs):
            b = check_bdf(b, 'bdfs[%d]' % i)
            if b not in wanted:
                wanted.append(b)
    vendor_id = _norm_id(vendor, 'vendor') if vendor is not None else None
    device_id = _norm_id(device, 'device') if device is not None else None
    if tsm is not None:
        check_tsm(tsm)

    reader = Reader(sysfs)
    listed, ignored = reader.list_bdfs()
    present = set(listed)
    missing: t.List[str] = []
    devices: t.List[t.Dict[str, t.Any]] = []
    for bdf in (wanted if wanted is not None else listed):
        if wanted is not None and bdf not in present:
            missing.append(bdf)
            continue
        try:
            dev = reader.read(bdf, only_tsm=wanted is None and not all_devices)
        except PathEscape as exc:
            raise TdispError(str(exc.cause), device=bdf, attribute=exc.attribute, remedy=exc.remedy)
        if dev is None:
            if wanted is not None:
                missing.append(bdf)
            continue
        f = dev.facts
        f['unknown'] = dict(f['unknown'])
        if wanted is None and all_devices and _is_bridge(f.get('class')):
            continue
        if vendor_id is not None and f['vendor'] != vendor_id:
            continue
        if device_id is not None and f['device'] != device_id:
            continue
        if tsm is not None and tsm not in (f['lock_holder'], f['connected'], f['bound']):
            continue
        devices.append(f)
    tsms = [{'name': x['name'], 'mode': x['mode'], 'unknown': x['unknown']} for x in reader.tsms(devices)]
    if evidence is not None:
        _add_evidence(devices, evidence, evidence_factory)
    kernel = kernel_facts(sysfs, tsms, devices)
    out = {'tsms': tsms, 'devices': devices, 'missing': missing, 'ignored': ignored, 'kernel': kernel}
    if kernel['note']:
        out['warnings'] = [kernel['note']]
    return out


def kernel_config(sysfs: Sysfs) -> t.Tuple[t.Optional[str], t.Optional[bool]]:
    """(file read, whether CONFIG_PCI_TSM is set) from the running kernel's config: ``/proc/config.gz``,
    else ``/boot/config-$(uname -r)``, both beside the sysfs root (``/sys`` -> ``/``). (None, None)
    when neither is readable: sysfs alone cannot tell a kernel without PCI TSM from one without a TSM."""
    base = os.path.dirname(sysfs.root).rstrip('/') if sysfs.root else ''
    for path, packed in ((base + '/proc/config.gz', True), ('%s/boot/config-%s' % (base, os.uname().release), False)):
        try:
            data = sysfs.io.read(path)
            text = (gzip.decompress(data) if packed else data).decode('utf-8', 'replace')
        except (OSError, EOFError, ValueError, AttributeError):
            continue
        for line in text.splitlines():
            if line.startswith('CONFIG_PCI_TSM='):
                return path, line.split('=', 1)[1].strip() in ('y', 'm')
        return path, False  # "# CONFIG_PCI_TSM is not set", or a kernel that predates the option
    return None, None


def kernel_facts(sysfs: Sysfs, tsms: t.List[t.Dict[str, t.Any]], devices: t.List[t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    """What this kernel offers, from feature probes only (never the kernel version): CONFIG_PCI_TSM,
    whether the guest files exist (``tsm/lock``; OOT kernels only), whether TSMs say ``pci_mode``.
    ``note`` is the one line an operator needs, or None."""
    config, pci_tsm = kernel_config(sysfs)
    has_pci_mode = False
    for x in tsms:
        tdir = sysfs.resolve_dir('%s/%s' % (CLASS_TSM, x['name']))
        has_pci_mode = has_pci_mode or (tdir is not None and sysfs.read(tdir + '/' + TSM_PCI_MODE)[1] != 'missing')
    guest = any(f.get('tsm_side') in ('guest', 'both') for f in devices) or any(x['mode'] == 'devsec' for x in tsms)
    note = None
    if pci_tsm is False:
        note = 'this kernel has no PCI TSM support (CONFIG_PCI_TSM is not set in %s): no TSM can register here' % config
    elif not tsms:
        note = 'no TSM registered%s' % (' (the kernel has PCI TSM support)' if pci_tsm else '')
    elif not has_pci_mode and not guest:
        note = 'this kernel exposes only the host side of PCI TSM (mainline): no guest lock/accept'
    return {'pci_tsm': pci_tsm, 'config': config, 'pci_mode': has_pci_mode, 'guest_flow': guest, 'note': note}


def _add_evidence(devices: t.List[t.Dict[str, t.Any]], opts: t.Mapping[str, t.Any],
                  factory: t.Optional[t.Callable[[], t.Any]]) -> None:
    from ansible_collections.coco.tdisp.plugins.module_utils._evidence.objects import digest, parse_object

    types = list(opts.get('types') or TYPE_NAMES)
    nonce = opts.get('nonce')
    max_size = opts.get('max_object_size')
    client = None
    cm = None
    try:
        for f in devices:
            if not (f['lock_holder'] or f['connected'] or f['bound']):
                f['evidence'] = {'errors': [{'object': '*', 'msg': '%s: not locked or connected: no TSM context, no evidence (ENXIO)' % f['bdf']}]}
                continue
            if client is None:
                if factory is None:
                    raise TdispError('no evidence client', attribute='evidence_endpoint')
                cm = factory()
                client = cm.__enter__() if hasattr(cm, '__enter__') else cm
            f['evidence'] = _device_evidence(client, f['bdf'], types, nonce, max_size, digest, parse_object)
    finally:
        if cm is not None and hasattr(cm, '__exit__'):
            cm.__exit__(None, None, None)


def _device_evidence(client: t.Any, bdf: str, types: t.List[str], nonce: t.Optional[bytes], max_size: t.Optional[int],
                     digest: t.Callable[[bytes], str], parse_object: t.Callable[..., t.Dict[str, t.Any]]) -> t.Dict[str, t.Any]:
    out: t.Dict[str, t.Any] = {'generation': None, 'family': None, 'objects': {}, 'errors': []}
    try:
        got = client.read(bdf, types, nonce=nonce)
    except TdispError as exc:
        out['errors'].append({'object': '*', 'msg': str(exc)})
        return out
    out['generation'] = got.get('generation')
    out['family'] = got.get('family')
    objects = got.get('objects') or {}
    for name in sorted(objects, key=lambda n: TYPE_NUMBERS.get(n, 99)):
        data = objects[name]
        entry: t.Dict[str, t.Any] = {'digest': digest(data), 'length': len(data)}
        if max_size is None or len(data) <= max_size:
            entry['data'] = base64.b64encode(data).decode('ascii')
        else:
            entry['data'] = None
            entry['omitted'] = 'larger than max_object_size (%d bytes)' % max_size
        out['objects'][name] = entry
    # An empty object is an empty slot (cert1..cert7 usually are): listed, not parsed.
    objects = {k: v for k, v in objects.items() if v}
    context: t.Dict[str, t.Any] = {}
    if 'vca' in objects:
        try:
            out['vca'] = parse_object('vca', objects['vca'])
            context = dict(out['vca'])
        except TdispError as exc:
            out['errors'].append({'object': 'vca', 'msg': str(exc)})
    if 'measurements' in objects:
        try:
            out['measurements'] = parse_object('measurements', objects['measurements'], context)
        except TdispError as exc:
            out['errors'].append({'object': 'measurements', 'msg': str(exc)})
    certs = {}
    for name in CERT_SLOTS:
        if name in objects:
            try:
                certs[name] = parse_object(name, objects[name], context)
            except TdispError as exc:
                out['errors'].append({'object': name, 'msg': str(exc)})
    if certs:
        out['certificates'] = certs
    if 'report' in objects:
        try:
            out['interface_report'] = parse_object('report', objects['report'])
        except TdispError as exc:
            out['errors'].append({'object': 'report', 'msg': str(exc)})
    return out
