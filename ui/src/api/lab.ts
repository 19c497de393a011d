// Typed wrappers over the transport: one method per lab command.

import type { Transport } from './transport';
import type { ClusterSettings, DrillInfo, LabState, LessonInfo, Preferences, PreferencesPatch, Reply, RunList, RunMeta } from './types';

export class LabClient {
  constructor(readonly transport: Transport) {}

  startCluster = (settings: Partial<ClusterSettings>) => this.transport.send({ command: 'start_cluster', settings }) as Promise<Reply<{ bootstrap: string }>>;
  stopCluster = () => this.transport.send({ command: 'stop_cluster' });
  fault = (fault: string, target: string, param?: number) => this.transport.send({ command: 'fault', fault, target, ...(param === undefined ? {} : { param }) }) as Promise<Reply<{ nodes: number[] }>>;
  cutLink = (from: number, to: number, both: boolean) => this.transport.send({ command: 'cut_link', from, to, both });
  healAll = () => this.transport.send({ command: 'heal_all' });
  healLink = (from: number, to: number) => this.transport.send({ command: 'heal_link', from, to });
  startWorkload = (rate_per_sec?: number, messages?: number) => this.transport.send({ command: 'start_workload', rate_per_sec, messages });
  stopWorkload = () => this.transport.send({ command: 'stop_workload' });
  listDrills = () => this.transport.send({ command: 'list_drills' }) as Promise<Reply<DrillInfo[]>>;
  runDrill = (name: string, seed?: number) => this.transport.send({ command: 'run_drill', name, seed });
  listLessons = () => this.transport.send({ command: 'list_lessons' }) as Promise<Reply<LessonInfo[]>>;
  runLesson = (name: string) => this.transport.send({ command: 'run_lesson', name });
  lessonNext = () => this.transport.send({ command: 'lesson_next' });
  runChaos = (seed: number, duration_ms: number, faults?: string, topics?: number) => this.transport.send({ command: 'run_chaos', seed, duration_ms, ...(faults ? { faults } : {}), ...(topics ? { topics } : {}) }) as Promise<Reply<{ started: boolean; schedule: string[] }>>;
  export = (format: string, dir?: string) => this.transport.send({ command: 'export', format, dir }) as Promise<Reply<{ files: string[] }>>;
  importTimeline = (jsonl: string) => this.transport.send({ command: 'import_timeline', jsonl }) as Promise<Reply<{ events: number }>>;
  watchRaftGroup = (group: string | null) => this.transport.send({ command: 'watch_raft_group', group }) as Promise<Reply<{ group: string | null }>>;
  snapshot = () => this.transport.send({ command: 'snapshot' }) as Promise<Reply<LabState>>;
  getPreferences = () => this.transport.send({ command: 'get_preferences' }) as Promise<Reply<Preferences>>;
  setPreferences = (patch: PreferencesPatch) => this.transport.send({ command: 'set_preferences', patch }) as Promise<Reply<Preferences>>;
  listRuns = () => this.transport.send({ command: 'list_runs' }) as Promise<Reply<RunList>>;
  openRun = (run: string) => this.transport.send({ command: 'open_run', run }) as Promise<Reply<{ run: RunMeta; jsonl: string }>>;
  exportRun = (run: string, format: string) => this.transport.send({ command: 'export_run', run, format }) as Promise<Reply<{ files: string[] }>>;
  deleteRun = (run: string) => this.transport.send({ command: 'delete_run', run }) as Promise<Reply<{ deleted: string }>>;

  /**
   * Whether this client may control the lab. The protocol has no "who am I" command, so this asks
   * for a fault with no name: a viewer gets `forbidden`, a controller `bad_request` (unknown fault).
   * Nothing runs either way.
   */
  async probeControl(): Promise<boolean> {
    const r = await this.transport.send({ command: 'fault', fault: 'probe', target: 'random' });
    return r.error?.code !== 'forbidden';
  }
}
