//! Shared by the command's integration tests.

/// A unique segment name, removed on drop.
pub struct Seg(pub String);
impl Seg {
    pub fn new(tag: &str) -> Self {
        Self(shmbridge::name::unique(&format!("shmb_t_cli_{tag}_")))
    }
}
impl Drop for Seg {
    fn drop(&mut self) {
        let _ = shmbridge::ShmObject::remove(&self.0);
    }
}
