//! Which packages a mirror keeps: all of them, or the newest of each name and architecture
//! and of each module stream (`--newest-only`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use super::modules::{ModuleVersion, nevra_key, normalize_nevra};
use super::repodata::Package;
use super::version::Evr;

/// For the packages `among` picks out of `packages` (by index), the indices of those of the
/// newest epoch:version-release of their name and architecture, in the order given.
fn newest_among(packages: &[Package], among: &[usize]) -> Vec<usize> {
    let mut best: HashMap<(&str, &str), &Evr> = HashMap::new();
    for &i in among {
        let p = &packages[i];
        let e = best.entry((&p.name, &p.arch)).or_insert(&p.evr);
        if p.evr.compare(e) == Ordering::Greater {
            *e = &p.evr;
        }
    }
    among.iter().copied().filter(|&i| packages[i].evr.compare(best[&(packages[i].name.as_str(), packages[i].arch.as_str())]) == Ordering::Equal).collect()
}

/// Keeps, for each name and architecture, the packages of the newest epoch:version-release
/// (all of them when several share it), in their original order.
pub fn newest(packages: Vec<Package>) -> Vec<Package> {
    let all: Vec<usize> = (0..packages.len()).collect();
    let keep: HashSet<usize> = newest_among(&packages, &all).into_iter().collect();
    packages.into_iter().enumerate().filter_map(|(i, p)| keep.contains(&i).then_some(p)).collect()
}

/// Which packages a mirror keeps, and how many module streams they serve.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub packages: Vec<Package>,
    /// Module streams (`name:stream`) with at least one package among `packages`.
    pub module_streams: usize,
}

/// Chooses the packages of a repository. Without `newest_only`, all of them. With it, what
/// `dnf reposync --newest-only` keeps, so that every stream a client can enable still
/// installs:
///
/// * of the packages no module lists (in any version), the newest epoch:version-release of
///   each name and architecture ([`newest`]);
/// * for each module stream, every package listed by its newest version (all contexts of
///   that version), and by the newest version that lists the newest package of each name and
///   architecture among all the stream's packages (normally that same version).
///
/// Packages listed only by older versions of their streams are left out. A module's
/// artifacts match packages by name, architecture and epoch:version-release (a missing epoch
/// is 0). The order of `packages` is kept.
pub fn select(packages: Vec<Package>, modules: &[ModuleVersion], newest_only: bool) -> Selection {
    let keys: Vec<String> = packages.iter().map(|p| nevra_key(&p.name, &p.arch, &p.evr)).collect();
    let mut by_key: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        by_key.entry(k).or_default().push(i);
    }
    // Per stream, per version: the canonical NEVRAs listed (every context together).
    let mut streams: BTreeMap<(&str, &str), BTreeMap<u64, HashSet<String>>> = BTreeMap::new();
    let mut modular: HashSet<String> = HashSet::new();
    for m in modules {
        let listed = streams.entry((&m.name, &m.stream)).or_default().entry(m.version).or_default();
        for k in m.artifacts.iter().filter_map(|a| normalize_nevra(a)) {
            modular.insert(k.clone());
            listed.insert(k);
        }
    }
    let mut keep = vec![!newest_only; packages.len()];
    if newest_only {
        let plain: Vec<usize> = (0..packages.len()).filter(|&i| !modular.contains(&keys[i])).collect();
        for i in newest_among(&packages, &plain) {
            keep[i] = true;
        }
    }
    let mut module_streams = 0;
    for versions in streams.values() {
        let mut chosen: BTreeSet<u64> = versions.keys().next_back().into_iter().copied().collect();
        if newest_only {
            let mut listed: Vec<usize> = versions.values().flatten().filter_map(|k| by_key.get(k.as_str())).flatten().copied().collect();
            listed.sort_unstable();
            listed.dedup();
            for i in newest_among(&packages, &listed) {
                if let Some((v, _)) = versions.iter().rev().find(|(_, ks)| ks.contains(&keys[i])) {
                    chosen.insert(*v);
                }
            }
        } else {
            chosen = versions.keys().copied().collect();
        }
        let mut any = false;
        for k in chosen.iter().flat_map(|v| &versions[v]) {
            for &i in by_key.get(k.as_str()).into_iter().flatten() {
                keep[i] = true;
                any = true;
            }
        }
        module_streams += usize::from(any);
    }
    let packages = packages.into_iter().zip(keep).filter_map(|(p, k)| k.then_some(p)).collect();
    Selection { packages, module_streams }
}

#[cfg(test)]
mod tests {
    use crate::sources::fetch::Checksum;

    use super::*;
    fn pkg(name: &str, arch: &str, evr: &str) -> Package {
        Package {
            name: name.into(),
            arch: arch.into(),
            evr: Evr::parse(evr),
            href: format!("{name}-{evr}.{arch}.rpm"),
            base: None,
            checksum: Checksum::sha256("00"),
            size: None,
        }
    }

    #[test]
    fn newest_per_name_and_arch() {
        let all = vec![
            pkg("a", "x86_64", "1.0-1"),
            pkg("a", "x86_64", "1.10-1"),
            pkg("a", "x86_64", "1.9-1"),
            pkg("a", "i686", "1.0-1"),
            pkg("b", "noarch", "1:0.1-1"),
            pkg("b", "noarch", "9.0-1"),
            pkg("c", "noarch", "2.0~rc1-1"),
            pkg("c", "noarch", "2.0-1"),
            pkg("c", "noarch", "2.0-1"),
        ];
        let kept: Vec<String> = newest(all).iter().map(|p| format!("{}-{}.{}", p.name, p.evr, p.arch)).collect();
        assert_eq!(kept, ["a-1.10-1.x86_64", "a-1.0-1.i686", "b-1:0.1-1.noarch", "c-2.0-1.noarch", "c-2.0-1.noarch"]);
    }

    fn kept(s: &Selection) -> Vec<String> {
        s.packages.iter().map(Package::nevra).collect()
    }

    fn module(stream: &str, version: u64, context: &str, artifacts: &[&str]) -> ModuleVersion {
        ModuleVersion {
            name: "nvidia-driver".into(),
            stream: stream.into(),
            version,
            context: context.into(),
            artifacts: artifacts.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn newest_only_keeps_the_newest_version_of_every_stream() {
        let all = vec![
            pkg("nvidia-driver", "x86_64", "3:550.54.14-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:550.90.07-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:560.28.03-1.el9"),
            pkg("nvidia-driver", "x86_64", "3:560.35.03-1.el9"),
            pkg("kmod-nvidia-open-dkms", "x86_64", "3:550.90.07-1.el9"),
            pkg("kmod-nvidia-open-dkms", "x86_64", "3:560.35.03-1.el9"),
            pkg("cuda-toolkit-config-common", "noarch", "12.4.127-1"),
            pkg("cuda-toolkit-config-common", "noarch", "12.6.77-1"),
            // Listed by no module: an ordinary package, even with a modular name.
            pkg("nvidia-driver", "i686", "3:550.54.14-1.el9"),
            pkg("nvidia-driver", "i686", "3:550.90.07-1.el9"),
        ];
        let modules = vec![
            module("550-dkms", 1, "a1", &["nvidia-driver-3:550.54.14-1.el9.x86_64"]),
            // The newest version lists an older driver too: all of it is kept.
            module("550-dkms", 2, "b2", &["nvidia-driver-3:550.54.14-1.el9.x86_64", "nvidia-driver-3:550.90.07-1.el9.x86_64"]),
            module("560-dkms", 1, "c3", &["nvidia-driver-3:560.28.03-1.el9.x86_64"]),
            module("560-dkms", 2, "d4", &["nvidia-driver-3:560.35.03-1.el9.x86_64", "nvidia-driver-3:560.99.99-1.el9.x86_64"]),
            // Two contexts of the newest version: both kept.
            module("open-dkms", 1, "e5", &["kmod-nvidia-open-dkms-3:550.90.07-1.el9.x86_64"]),
            module("open-dkms", 2, "f6", &["kmod-nvidia-open-dkms-3:560.35.03-1.el9.x86_64"]),
            module("open-dkms", 2, "f7", &["nvidia-driver-3:560.35.03-1.el9.x86_64"]),
            // A stream none of whose packages are in this repository.
            module("470", 1, "g8", &["nvidia-driver-3:470.256.02-1.el9.x86_64", "not a nevra"]),
        ];
        let s = select(all.clone(), &modules, true);
        assert_eq!(
            kept(&s),
            [
                "nvidia-driver-3:550.54.14-1.el9.x86_64",
                "nvidia-driver-3:550.90.07-1.el9.x86_64",
                "nvidia-driver-3:560.35.03-1.el9.x86_64",
                "kmod-nvidia-open-dkms-3:560.35.03-1.el9.x86_64",
                "cuda-toolkit-config-common-12.6.77-1.noarch",
                "nvidia-driver-3:550.90.07-1.el9.i686",
            ]
        );
        assert_eq!(s.module_streams, 3);
        // Without modules, only the newest of each name and architecture, as before.
        assert_eq!(kept(&select(all.clone(), &[], true)), kept(&Selection { packages: newest(all.clone()), module_streams: 0 }));
        assert_eq!(kept(&select(all.clone(), &[], true)).len(), 4);
        // Without newest_only, everything; the streams count those with packages here.
        let s = select(all.clone(), &modules, false);
        assert_eq!(s.packages, all);
        assert_eq!(s.module_streams, 3);
    }

    #[test]
    fn newest_only_keeps_the_stream_version_that_holds_a_streams_newest_package() {
        // As dnf reposync: version 3 is the newest, but the newest driver of the stream is only
        // in version 2, so version 2 is kept too (not version 1).
        let driver = |evr: &str| pkg("nvidia-driver", "x86_64", evr);
        let mut all = vec![driver("3:550.54.14-1.el9"), driver("3:550.90.07-1.el9"), driver("3:550.100-1.el9")];
        let mut modules = vec![
            module("550", 1, "a", &["nvidia-driver-3:550.90.07-1.el9.x86_64"]),
            module("550", 2, "a", &["nvidia-driver-3:550.100-1.el9.x86_64"]),
            module("550", 3, "a", &["nvidia-driver-3:550.54.14-1.el9.x86_64"]),
        ];
        let s = select(all.clone(), &modules, true);
        assert_eq!(kept(&s), ["nvidia-driver-3:550.54.14-1.el9.x86_64", "nvidia-driver-3:550.100-1.el9.x86_64"]);
        assert_eq!(s.module_streams, 1);
        // A name only an old version lists is that name's newest package: its version stays.
        all.push(pkg("nvidia-libs", "x86_64", "3:550.1-1.el9"));
        modules[0].artifacts.push("nvidia-libs-3:550.1-1.el9.x86_64".into());
        assert_eq!(select(all, &modules, true).packages.len(), 4);
    }
}
