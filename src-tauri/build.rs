// The window embeds the built web UI (tauri.conf.json frontendDist = ../ui/dist). Check for it here so
// a missing build fails with the fix, not with a codegen error deep inside generate_context!.
fn main() {
    let index = std::path::Path::new("../ui/dist/index.html");
    println!("cargo:rerun-if-changed=../ui/dist/index.html");
    if !index.is_file() {
        panic!("clusterlab-desktop: the web UI is not built ({} is missing); run `npm ci && npm run build` in ui/ first", index.display());
    }
    tauri_build::build()
}
