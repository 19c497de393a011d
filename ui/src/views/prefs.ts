// Preferences remembered by the lab between starts (labs/src/prefs.rs): the theme, presentation
// mode and folded panels of this UI, and the settings of the last cluster started (the lab saves
// those itself on start). A read-only viewer may change its own view but saves nothing.

import type { LabClient } from '../api/lab';
import type { ClusterSettings, UiPreferences } from '../api/types';

export interface Prefs {
  /** Asks the lab for the remembered preferences and applies them; fills the settings form
   * with the last cluster's settings unless a cluster runs. */
  load(running: () => boolean): Promise<void>;
  togglePresentation(): void;
  toggleTheme(): void;
  /** Folds or unfolds a panel (by its section id). */
  toggleFolded(id: string): void;
}

export function preferences(client: LabClient, fillSettings: (s: Partial<ClusterSettings>) => void): Prefs {
  let ui: UiPreferences = {};

  function show(): void {
    document.body.classList.toggle('presentation', ui.presentation === true);
    document.body.classList.toggle('light', ui.theme === 'light');
    const folded = new Set(ui.collapsed ?? []);
    document.querySelectorAll<HTMLElement>('section.panel').forEach((s) => s.classList.toggle('folded', folded.has(s.id)));
    const theme = document.getElementById('theme');
    if (theme) theme.textContent = ui.theme === 'light' ? 'Dark theme' : 'Light theme';
  }

  function set(patch: Partial<UiPreferences>): void {
    ui = { ...ui, ...patch };
    show();
    void client.setPreferences({ ui: patch }); // forbidden for a viewer: its view changes, nothing is saved
  }

  return {
    async load(running) {
      const r = await client.getPreferences();
      if (!r.ok) return;
      ui = r.result.ui ?? {};
      show();
      if (r.result.cluster && !running()) fillSettings(r.result.cluster);
    },
    togglePresentation: () => set({ presentation: !ui.presentation }),
    toggleTheme: () => set({ theme: ui.theme === 'light' ? 'dark' : 'light' }),
    toggleFolded(id) {
      const folded = new Set(ui.collapsed ?? []);
      if (folded.has(id)) folded.delete(id);
      else folded.add(id);
      set({ collapsed: [...folded] });
    },
  };
}
