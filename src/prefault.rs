//! prototype
#![allow(unsafe_code)]

pub fn reserve(bytes: usize) {
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
        let p = libc::malloc(bytes);
        if p.is_null() {
            return;
        }
        let a = (p as usize + 4095) & !4095;
        let b = (p as usize + bytes) & !4095;
        if b > a {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_POPULATE_WRITE);
        }
        libc::free(p);
    }
}
