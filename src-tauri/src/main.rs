// No console window on Windows release builds; the app is a GUI.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    clusterlab_desktop::run()
}
