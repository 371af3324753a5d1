// SPDX-License-Identifier: GPL-2.0
/*
 * tdisp_test_tsm: a test TSM for the coco.tdisp kernel lane (tests/kernel).
 *
 * Built out of tree against Debian's linux-headers-7.3 and loaded into a
 * real 7.3 kernel under QEMU.  What it does:
 *
 *  - marks the PCIe endpoints named in "bdfs" TEE-capable (PCI_EXP_DEVCAP_TEE
 *    in the cached pdev->devcap; QEMU's devices have no TEE bit and no DOE
 *    mailbox) and registers a link TSM (tsm0) through the mainline
 *    tsm_register() API, so the kernel's own drivers/pci/tsm.c shows its
 *    host-side tsm/connect, tsm/disconnect, tsm/dsm, tsm/bound and
 *    "authenticated" on them; connect/disconnect run the kernel's code and
 *    call this module's probe/connect ops;
 *  - registers a devsec TSM (tsm1), which mainline 7.3 accepts but shows
 *    nothing for;
 *  - adds the out-of-tree guest-side attributes tsm/lock, tsm/unlock and
 *    tsm/accept (merged into the kernel's tsm/ group) with the semantics and
 *    check order of kernel-abi.md sections 1c and 9 (devsec-phase2);
 *  - adds trust_policy (design B, kernel-abi.md section 1c): EBUSY once a
 *    driver has matched (dev_can_match()), and at bind, through a PM domain
 *    whose activate() the driver core calls in really_probe() before the
 *    driver's probe, EPERM for "disabled" and EINVAL for "full" on a device
 *    the PCI core marks untrusted;
 *  - optionally (pci_mode=1) adds the out-of-tree tsmN/pci_mode attribute.
 *
 * With guest=0 pci_mode=0 only the TEE bit and the two TSMs remain: what
 * mainline 7.3 itself shows for a TEE-capable endpoint.
 *
 * Every "a driver is bound" check reads the real dev->driver under the
 * device lock; bind and unbind are the driver core's own.
 *
 * Locking: tdt_lock (lock/accept state) is taken before the device lock,
 * never inside it; the trust policy is guarded by the device lock alone,
 * because the driver core calls tdt_pm_activate() with it held.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/device/faux.h>
#include <linux/kstrtox.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/pci-tsm.h>
#include <linux/pm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/tsm.h>

#define TDT_MAX_DEVS 8

static char *bdfs = "";
module_param(bdfs, charp, 0444);
MODULE_PARM_DESC(bdfs, "comma-separated PCI names that get the test TSM attributes");

static bool link = true;
module_param(link, bool, 0444);
MODULE_PARM_DESC(link, "register a link TSM (kernel host-side tsm/ attributes)");

static bool guest = true;
module_param(guest, bool, 0444);
MODULE_PARM_DESC(guest, "add tsm/lock, tsm/unlock, tsm/accept and trust_policy (0: what mainline 7.3 shows)");

static bool pci_mode = true;
module_param(pci_mode, bool, 0444);
MODULE_PARM_DESC(pci_mode, "add the out-of-tree tsmN/pci_mode attribute");

static int accept_errno;
module_param(accept_errno, int, 0644);
MODULE_PARM_DESC(accept_errno, "if set, the TSM run step of tsm/accept fails with -accept_errno");

enum tdt_policy { TDT_DEFAULT, TDT_DISABLED, TDT_ADVERSARY, TDT_FULL };
static const char *const tdt_policy_names[] = {
	[TDT_DEFAULT] = "default",
	[TDT_DISABLED] = "disabled",
	[TDT_ADVERSARY] = "adversary",
	[TDT_FULL] = "full",
};

struct tdt_dev {
	struct pci_dev *pdev;
	u32 orig_devcap;
	struct dev_pm_domain *orig_pm_domain;
	bool group_merged;	/* merged into the kernel's tsm/ group */
	bool group_created;	/* tsm/ group created by this module */
	bool policy_file;
	bool locked;
	bool accepted;
	enum tdt_policy policy;	/* written only under the device lock */
};

struct tdt_link_ctx {
	struct pci_tsm_pf0 pf0;
};

static struct tdt_dev tdt_devs[TDT_MAX_DEVS];
static int tdt_ndevs;
static DEFINE_MUTEX(tdt_lock);
static struct faux_device *tdt_faux;
static struct tsm_dev *tdt_link_tsm;
static struct tsm_dev *tdt_devsec_tsm;
static struct dev_pm_domain tdt_pm_domain;

static struct tdt_dev *tdt_find(struct device *dev)
{
	for (int i = 0; i < tdt_ndevs; i++)
		if (&tdt_devs[i].pdev->dev == dev)
			return &tdt_devs[i];
	return NULL;
}

/* ---- link TSM ops: called by the kernel's drivers/pci/tsm.c ---- */

static struct pci_tsm *tdt_link_probe(struct tsm_dev *tsm_dev, struct pci_dev *pdev)
{
	struct tdt_link_ctx *ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	int rc;

	if (!ctx)
		return NULL;
	if (is_pci_tsm_pf0(pdev)) {
		/* QEMU devices have no CMA DOE mailbox: expected -ENODEV */
		rc = pci_tsm_pf0_constructor(pdev, &ctx->pf0, tsm_dev);
		if (rc == -ENODEV)
			rc = pci_tsm_link_constructor(pdev, &ctx->pf0.base_tsm, tsm_dev);
	} else {
		rc = pci_tsm_link_constructor(pdev, &ctx->pf0.base_tsm, tsm_dev);
	}
	if (rc) {
		kfree(ctx);
		return NULL;
	}
	return &ctx->pf0.base_tsm;
}

static void tdt_link_remove(struct pci_tsm *tsm)
{
	struct tdt_link_ctx *ctx = container_of(tsm, struct tdt_link_ctx, pf0.base_tsm);

	if (is_pci_tsm_pf0(tsm->pdev))
		pci_tsm_pf0_destructor(&ctx->pf0);
	kfree(ctx);
}

static int tdt_link_connect(struct pci_dev *pdev)
{
	return 0;
}

static void tdt_link_disconnect(struct pci_dev *pdev)
{
}

static struct pci_tsm_ops tdt_link_ops = {
	.link_ops = {
		.probe = tdt_link_probe,
		.remove = tdt_link_remove,
		.connect = tdt_link_connect,
		.disconnect = tdt_link_disconnect,
	},
};

/* ---- devsec TSM: mainline 7.3 registers it and shows nothing ---- */

static struct pci_tsm *tdt_devsec_lock(struct tsm_dev *tsm_dev, struct pci_dev *pdev)
{
	return NULL;	/* never called: the guest attributes below keep their own state */
}

static void tdt_devsec_unlock(struct pci_tsm *tsm)
{
}

static struct pci_tsm_ops tdt_devsec_ops = {
	.devsec_ops = {
		.lock = tdt_devsec_lock,
		.unlock = tdt_devsec_unlock,
	},
};

/* ---- guest-side tsm/lock, tsm/unlock, tsm/accept ---- */

static ssize_t lock_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct tdt_dev *td = tdt_find(dev);

	guard(mutex)(&tdt_lock);
	if (!td || !td->locked)
		return sysfs_emit(buf, "\n");
	return sysfs_emit(buf, "%s\n", dev_name(&tdt_devsec_tsm->dev));
}

/*
 * The common shape of lock, unlock and accept (kernel-abi.md section 9): under
 * tdt_lock, @refuse gives the state errors (checked first); then, under the
 * device lock, a bound driver is EBUSY, else @step makes the transition.
 */
static ssize_t tdt_guest_store(struct device *dev, size_t len, int arg,
			       int (*refuse)(struct tdt_dev *td, int arg),
			       int (*step)(struct tdt_dev *td))
{
	struct tdt_dev *td = tdt_find(dev);
	int rc;

	if (!td)
		return -ENXIO;
	rc = mutex_lock_interruptible(&tdt_lock);
	if (rc)
		return rc;
	rc = refuse(td, arg);
	if (!rc)
		rc = device_lock_interruptible(dev);
	if (!rc) {
		rc = dev->driver ? -EBUSY : step(td);
		device_unlock(dev);
	}
	mutex_unlock(&tdt_lock);
	return rc ? rc : len;
}

static int lock_refuse(struct tdt_dev *td, int id)
{
	if (td->locked || td->pdev->tsm)
		return -EBUSY;	/* a TSM context already: locked, or link-connected */
	return id == tdt_devsec_tsm->id ? 0 : -ENXIO;
}

static int lock_step(struct tdt_dev *td)
{
	td->locked = true;
	td->accepted = false;
	return 0;
}

static ssize_t lock_store(struct device *dev, struct device_attribute *attr,
			  const char *buf, size_t len)
{
	int id;

	if (sscanf(buf, "tsm%d\n", &id) != 1)
		return -EINVAL;
	return tdt_guest_store(dev, len, id, lock_refuse, lock_step);
}
static DEVICE_ATTR_RW(lock);

static int unlock_refuse(struct tdt_dev *td, int name_matches)
{
	return td->locked && name_matches ? 0 : -EINVAL;
}

static int unlock_step(struct tdt_dev *td)
{
	td->locked = false;
	td->accepted = false;
	return 0;
}

static ssize_t unlock_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t len)
{
	return tdt_guest_store(dev, len, sysfs_streq(buf, dev_name(&tdt_devsec_tsm->dev)),
			       unlock_refuse, unlock_step);
}
static DEVICE_ATTR_WO(unlock);

static ssize_t accept_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct tdt_dev *td = tdt_find(dev);

	guard(mutex)(&tdt_lock);
	return sysfs_emit(buf, "%d\n", td && td->accepted);
}

static int accept_refuse(struct tdt_dev *td, int unused)
{
	return td->locked ? 0 : -EINVAL;
}

static int accept_step(struct tdt_dev *td)
{
	if (td->accepted)
		return 0;	/* already in RUN: success, no action */
	if (READ_ONCE(accept_errno) > 0)
		return -READ_ONCE(accept_errno);	/* the TSM run() step failed */
	td->accepted = true;
	return 0;
}

static ssize_t accept_store(struct device *dev, struct device_attribute *attr,
			    const char *buf, size_t len)
{
	bool val;

	if (kstrtobool(buf, &val) || !val)
		return -EINVAL;	/* there is no "unaccept" verb */
	return tdt_guest_store(dev, len, 0, accept_refuse, accept_step);
}
static DEVICE_ATTR_RW(accept);

static struct attribute *tdt_guest_attrs[] = {
	&dev_attr_lock.attr,
	&dev_attr_unlock.attr,
	&dev_attr_accept.attr,
	NULL,
};

static const struct attribute_group tdt_guest_group = {
	.name = "tsm",
	.attrs = tdt_guest_attrs,
};

/* ---- trust_policy (design B) ---- */

static ssize_t trust_policy_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct tdt_dev *td = tdt_find(dev);

	return sysfs_emit(buf, "%s\n", tdt_policy_names[td ? READ_ONCE(td->policy) : TDT_DEFAULT]);
}

static ssize_t trust_policy_store(struct device *dev, struct device_attribute *attr,
				  const char *buf, size_t len)
{
	struct tdt_dev *td = tdt_find(dev);
	int i, rc;

	for (i = 0; i < ARRAY_SIZE(tdt_policy_names); i++)
		if (sysfs_streq(buf, tdt_policy_names[i]))
			break;
	if (i == ARRAY_SIZE(tdt_policy_names))
		return -EINVAL;
	if (!td)
		return -ENXIO;
	rc = device_lock_interruptible(dev);
	if (rc)
		return rc;
	/* "can be changed only before the device is probed" */
	if (dev_can_match(dev) || dev->driver) {
		rc = -EBUSY;
	} else {
		WRITE_ONCE(td->policy, i);
	}
	device_unlock(dev);
	return rc ? rc : len;
}
static DEVICE_ATTR_RW(trust_policy);

/* really_probe() calls this under the device lock, after dma_configure, before probe */
static int tdt_pm_activate(struct device *dev)
{
	struct tdt_dev *td = tdt_find(dev);
	enum tdt_policy policy;

	if (!td)
		return 0;
	policy = READ_ONCE(td->policy);	/* written under the device lock, which is held here */
	if (policy == TDT_DISABLED)
		return -EPERM;
	if (policy == TDT_FULL && td->pdev->untrusted)
		return -EINVAL;	/* the bus resolves an untrusted device below FULL */
	return 0;
}

/* ---- tsmN/pci_mode (out of tree) ---- */

static ssize_t pci_mode_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	if (tdt_link_tsm && dev == &tdt_link_tsm->dev)
		return sysfs_emit(buf, "link\n");
	return sysfs_emit(buf, "devsec\n");
}
static DEVICE_ATTR_RO(pci_mode);

/* ---- set-up and tear-down ---- */

static int tdt_parse_bdfs(void)
{
	char *list, *cur, *name;

	list = kstrdup(bdfs, GFP_KERNEL);
	if (!list)
		return -ENOMEM;
	cur = list;
	while ((name = strsep(&cur, ",")) != NULL) {
		struct pci_dev *pdev = NULL;
		unsigned int dom, bus, slot, fn;

		name = strim(name);
		if (!*name)
			continue;
		if (tdt_ndevs == TDT_MAX_DEVS || sscanf(name, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4) {
			pr_err("bad or too many bdfs entries: %s\n", name);
			goto fail;
		}
		pdev = pci_get_domain_bus_and_slot(dom, bus, PCI_DEVFN(slot, fn));
		if (!pdev || !pci_is_pcie(pdev)) {
			pr_err("%s: no such PCIe device\n", name);
			pci_dev_put(pdev);
			goto fail;
		}
		tdt_devs[tdt_ndevs++].pdev = pdev;
	}
	kfree(list);
	return 0;
fail:
	kfree(list);
	return -ENODEV;
}

static void tdt_teardown_devs(void)
{
	for (int i = tdt_ndevs - 1; i >= 0; i--) {
		struct tdt_dev *td = &tdt_devs[i];
		struct device *dev = &td->pdev->dev;

		if (td->group_merged)
			sysfs_unmerge_group(&dev->kobj, &tdt_guest_group);
		if (td->group_created)
			sysfs_remove_group(&dev->kobj, &tdt_guest_group);
		if (td->policy_file)
			device_remove_file(dev, &dev_attr_trust_policy);
		if (guest) {
			device_lock(dev);
			dev->pm_domain = td->orig_pm_domain;
			device_unlock(dev);
		}
		td->group_merged = td->group_created = td->policy_file = false;
	}
}

static void tdt_put_devs(void)
{
	for (int i = 0; i < tdt_ndevs; i++) {
		tdt_devs[i].pdev->devcap = tdt_devs[i].orig_devcap;
		pci_dev_put(tdt_devs[i].pdev);
	}
	tdt_ndevs = 0;
}

static void tdt_unregister_tsms(void)
{
	if (tdt_devsec_tsm) {
		if (pci_mode)
			device_remove_file(&tdt_devsec_tsm->dev, &dev_attr_pci_mode);
		tsm_unregister(tdt_devsec_tsm);
		tdt_devsec_tsm = NULL;
	}
	if (tdt_link_tsm) {
		if (pci_mode)
			device_remove_file(&tdt_link_tsm->dev, &dev_attr_pci_mode);
		tsm_unregister(tdt_link_tsm);
		tdt_link_tsm = NULL;
	}
}

static int __init tdt_init(void)
{
	int rc;

	rc = tdt_parse_bdfs();
	if (rc)
		goto err_devs;

	/* TEE capability first, so that the kernel's tsm/ group becomes visible */
	for (int i = 0; i < tdt_ndevs; i++) {
		tdt_devs[i].orig_devcap = tdt_devs[i].pdev->devcap;
		tdt_devs[i].pdev->devcap |= PCI_EXP_DEVCAP_TEE;
	}

	tdt_faux = faux_device_create("tdisp_test_tsm", NULL, NULL);
	if (!tdt_faux) {
		rc = -ENOMEM;
		goto err_devs;
	}
	if (link) {
		tdt_link_tsm = tsm_register(&tdt_faux->dev, &tdt_link_ops);
		if (IS_ERR(tdt_link_tsm)) {
			rc = PTR_ERR(tdt_link_tsm);
			tdt_link_tsm = NULL;
			goto err_tsm;
		}
	}
	tdt_devsec_tsm = tsm_register(&tdt_faux->dev, &tdt_devsec_ops);
	if (IS_ERR(tdt_devsec_tsm)) {
		rc = PTR_ERR(tdt_devsec_tsm);
		tdt_devsec_tsm = NULL;
		goto err_tsm;
	}
	if (pci_mode) {
		if (tdt_link_tsm)
			rc = device_create_file(&tdt_link_tsm->dev, &dev_attr_pci_mode);
		if (!rc)
			rc = device_create_file(&tdt_devsec_tsm->dev, &dev_attr_pci_mode);
		if (rc)
			goto err_tsm;
	}

	tdt_pm_domain.ops = *pci_bus_type.pm;
	tdt_pm_domain.activate = tdt_pm_activate;
	for (int i = 0; guest && i < tdt_ndevs; i++) {
		struct tdt_dev *td = &tdt_devs[i];
		struct device *dev = &td->pdev->dev;

		/* the kernel made tsm/ (link TSM, TEE endpoint): merge into it */
		rc = sysfs_merge_group(&dev->kobj, &tdt_guest_group);
		if (!rc) {
			td->group_merged = true;
		} else {
			rc = sysfs_create_group(&dev->kobj, &tdt_guest_group);
			if (rc)
				goto err_files;
			td->group_created = true;
		}
		rc = device_create_file(dev, &dev_attr_trust_policy);
		if (rc)
			goto err_files;
		td->policy_file = true;
		device_lock(dev);
		td->orig_pm_domain = dev->pm_domain;
		if (!dev->pm_domain)
			dev->pm_domain = &tdt_pm_domain;
		device_unlock(dev);
		pci_info(td->pdev, "tdisp_test_tsm: TEE test attributes (%s tsm/ group)\n",
			 td->group_merged ? "kernel" : "module");
	}
	pr_info("registered%s%s %s, %d device(s)\n", tdt_link_tsm ? " link " : "",
		tdt_link_tsm ? dev_name(&tdt_link_tsm->dev) : "",
		dev_name(&tdt_devsec_tsm->dev), tdt_ndevs);
	return 0;

err_files:
	tdt_teardown_devs();
err_tsm:
	tdt_unregister_tsms();
	faux_device_destroy(tdt_faux);
err_devs:
	tdt_put_devs();
	return rc;
}

static void __exit tdt_exit(void)
{
	tdt_teardown_devs();
	tdt_unregister_tsms();
	faux_device_destroy(tdt_faux);
	tdt_put_devs();
}

module_init(tdt_init);
module_exit(tdt_exit);
MODULE_DESCRIPTION("coco.tdisp test TSM: link TSM plus out-of-tree guest TDISP attributes");
MODULE_LICENSE("GPL");
