//! What the dynamic loader leaves mapped after it is done: steward's relocation table.
//!
//! steward is a position-independent executable, so before `main` the loader writes the
//! load address into every pointer of its vtables and constant tables, reading one 24-byte
//! entry of `.rela.dyn` per pointer: about 0.2 MB, read once and never again, whose pages
//! stay mapped and count in steward's resident memory for as long as it runs
//! (docs/benchmarks.md, "Idle memory"). [`release_relocations`] unmaps them from this
//! process.
//!
//! The table is in a read-only file mapping, so its pages are clean copies of the file:
//! `MADV_DONTNEED` only drops them from this process's page tables (they stay in the page
//! cache, shared, and a later read would map them again). Packed relocations (`-z
//! pack-relative-relocs`, DT_RELR) would shrink the table itself, but need glibc 2.36 at
//! run time, which steward does not require.

/// Unmaps the pages of the executable's `.rela.dyn` from this process. Call it from `main`:
/// by then the loader has applied every relocation. Does nothing where there is no such
/// table or it is not in a read-only segment.
pub fn release_relocations() {
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    if let Some((start, len)) = linux::relocation_table() {
        linux::release(start, len);
    }
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod linux {
    use libc::{c_int, c_void, dl_phdr_info, size_t};

    /// An entry of the dynamic section (`Elf64_Dyn`, which the libc crate does not have).
    #[repr(C)]
    struct Dyn {
        d_tag: i64,
        d_val: u64,
    }

    /// Where the executable's `.rela.dyn` is mapped, if it lies in a read-only segment.
    pub(super) fn relocation_table() -> Option<(usize, usize)> {
        let mut found: Option<(usize, usize)> = None;
        // SAFETY: dl_iterate_phdr calls `first_object` with a valid dl_phdr_info for each
        // loaded object, the executable first, and the pointer to `found` passed here,
        // which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(Some(first_object), (&raw mut found).cast());
        }
        found
    }

    /// The executable is the first object dl_iterate_phdr reports: note its table, then stop
    /// (return non-zero).
    unsafe extern "C" fn first_object(info: *mut dl_phdr_info, _size: size_t, found: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes a valid dl_phdr_info (see the caller).
        let info = unsafe { &*info };
        if info.dlpi_phdr.is_null() {
            return 1;
        }
        // SAFETY: the loader's program headers of the executable: dlpi_phnum entries at
        // dlpi_phdr, mapped for the life of the process.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let table = table_of(phdrs, info.dlpi_addr as usize);
        // SAFETY: `found` is the Option that relocation_table passed.
        unsafe { *found.cast::<Option<(usize, usize)>>() = table };
        1
    }

    /// DT_RELA and DT_RELASZ of the dynamic section, if the table lies in one read-only
    /// loaded segment (clean file pages: dropping them loses nothing).
    fn table_of(phdrs: &[libc::Elf64_Phdr], bias: usize) -> Option<(usize, usize)> {
        let dynamic = phdrs.iter().find(|p| p.p_type == libc::PT_DYNAMIC)?;
        let mut entry = (bias + dynamic.p_vaddr as usize) as *const Dyn;
        let (mut start, mut len) = (None, None);
        loop {
            // SAFETY: the dynamic section is mapped and ends with a DT_NULL entry.
            let (tag, value) = unsafe { ((*entry).d_tag, (*entry).d_val as usize) };
            match tag {
                0 => break,               // DT_NULL
                7 => start = Some(value), // DT_RELA
                8 => len = Some(value),   // DT_RELASZ
                _ => {}
            }
            // SAFETY: not past DT_NULL, which ends the section.
            entry = unsafe { entry.add(1) };
        }
        // glibc turns the addresses of the dynamic section into absolute ones; musl leaves
        // them relative to the load address.
        let (start, len) = (start?, len?);
        let start = if start < bias { start + bias } else { start };
        let read_only = phdrs.iter().any(|p| {
            let segment = bias + p.p_vaddr as usize;
            p.p_type == libc::PT_LOAD
                && p.p_flags & libc::PF_W == 0
                && segment <= start
                && start + len <= segment + p.p_filesz as usize
        });
        read_only.then_some((start, len))
    }

    /// `MADV_DONTNEED` on the whole pages of `[start, start + len)`.
    pub(super) fn release(start: usize, len: usize) {
        let (first, end) = whole_pages(start, len);
        if first < end {
            // SAFETY: whole pages of a read-only private file mapping of the executable (see
            // table_of), which nothing reads any more; a read would fault them in again from
            // the file.
            unsafe { libc::madvise(first as *mut c_void, end - first, libc::MADV_DONTNEED) };
        }
    }

    pub(super) fn whole_pages(start: usize, len: usize) -> (usize, usize) {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        (start.div_ceil(page) * page, (start + len) / page * page)
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu", target_pointer_width = "64"))]
mod tests {
    use std::io::{Read, Seek, SeekFrom};

    fn page() -> usize {
        // SAFETY: sysconf has no preconditions.
        unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
    }

    /// How many of the pages in `[first, end)` are mapped in this process (/proc/self/pagemap:
    /// bit 63 of each page's entry, readable without privileges).
    fn resident(first: usize, end: usize) -> usize {
        let mut map = std::fs::File::open("/proc/self/pagemap").unwrap();
        map.seek(SeekFrom::Start((first / page() * 8) as u64)).unwrap();
        let mut entries = vec![0u8; (end - first) / page() * 8];
        map.read_exact(&mut entries).unwrap();
        entries.chunks(8).filter(|e| u64::from_le_bytes((*e).try_into().unwrap()) >> 63 == 1).count()
    }

    #[test]
    fn the_relocation_table_leaves_this_process() {
        // The test binary, like steward, is a position-independent executable: its
        // relocation table was read before main.
        let (start, len) = super::linux::relocation_table().expect("a .rela.dyn in a read-only segment");
        let (first, end) = super::linux::whole_pages(start, len);
        assert!(end > first, "a relocation table of several pages ({len} bytes)");
        // Fault the table in, as the loader did.
        for at in (first..end).step_by(page()) {
            // SAFETY: [start, start + len) is mapped and readable (the loader read it).
            std::hint::black_box(unsafe { std::ptr::read_volatile(at as *const u8) });
        }
        assert_eq!(resident(first, end), (end - first) / page());
        super::release_relocations();
        assert_eq!(resident(first, end), 0, "the table's pages are still mapped");
    }
}
