// Verifying other people's devices, in the machine's chunk: their device
// lists with each device's Ed25519 key and trust, the device's local trust
// ("Mark as verified"), and interactive verification by emoji (SAS,
// `m.sas.v1`) over to-device messages. Hark serves no cross-signing keys,
// so trust is per device: a finished SAS, or a fingerprint compared by
// another channel, sets the device's local trust to verified in this
// device's store.
//
// The library's `VerificationRequest` and `Sas` objects live here; the app
// sees plain `VerificationView`s (index.ts) and acts on flows by their id.

import {
  DeviceId,
  LocalTrust,
  OlmMachine,
  RequestType,
  Sas,
  ToDeviceRequest,
  UserId,
  VerificationMethod,
  VerificationRequest,
  VerificationRequestPhase,
  type Qr,
  type RoomMessageRequest,
} from '@matrix-org/matrix-sdk-crypto-wasm';
import type { HarkApi } from '../hark-client';
import type { ContactDevice, VerificationState, VerificationView } from './index';

/** A request the library hands back for sending (verification messages go to devices). */
type Outgoing = ToDeviceRequest | RoomMessageRequest;

/** One verification flow this device takes part in. */
interface Flow {
  request: VerificationRequest;
  sas: Sas | null;
  /** Who is on the other side (Matrix id). */
  user: string;
  /** We already asked the library to start SAS for this flow. */
  sasStarted: boolean;
  /** The state last shown, to tell a declined request from a cancelled comparison. */
  last: VerificationState | null;
  /** Once cancelled: whether it ended before it was accepted (declined). */
  declined: boolean | null;
}

export class Verifications {
  private flows = new Map<string, Flow>();

  constructor(
    private readonly machine: OlmMachine,
    private readonly api: Pick<HarkApi, 'sendToDevice'>,
    /** A flow changed (a message arrived for it, or it timed out): the app asks for its view. */
    private readonly changed: (flowId: string) => void,
  ) {}

  /**
   * The devices of `user` (Matrix id) this device knows, logged-out ones
   * left out. Call `track` and send the machine's requests first, so the
   * list is fresh.
   */
  async devices(user: string): Promise<ContactDevice[]> {
    const devices = await this.machine.getUserDevices(new UserId(user));
    try {
      return devices
        .devices()
        .filter((d) => !d.isDeleted())
        .map((d) => {
          const key = d.ed25519Key;
          const id = d.deviceId;
          const device: ContactDevice = { id: id.toString(), fingerprint: key?.toBase64() ?? '', verified: d.isVerified() };
          key?.free();
          id.free();
          d.free();
          return device;
        })
        .sort((a, b) => Number(a.id) - Number(b.id) || a.id.localeCompare(b.id));
    } finally {
      devices.free();
    }
  }

  /** Mark a device verified (its fingerprint was compared by another channel). */
  async markVerified(user: string, device: string): Promise<void> {
    const d = await this.machine.getDevice(new UserId(user), new DeviceId(device));
    if (!d) throw new Error('This device is not known (any more).');
    try {
      await d.setLocalTrust(LocalTrust.Verified);
    } finally {
      d.free();
    }
  }

  /** Ask `device` of `user` to verify by emoji; answers the flow's id. */
  async request(user: string, device: string): Promise<string> {
    const d = await this.machine.getDevice(new UserId(user), new DeviceId(device));
    if (!d) throw new Error('This device is not known (any more).');
    try {
      const [request, out] = d.requestVerification([VerificationMethod.SasV1]);
      const flowId = request.flowId;
      this.watch(user, request);
      await this.send(out);
      return flowId;
    } finally {
      d.free();
    }
  }

  /** Requests from `users` (Matrix ids) the machine has and this class does not watch yet: watched now. */
  discover(users: Iterable<string>): void {
    for (const user of new Set(users)) {
      const id = new UserId(user);
      for (const request of this.machine.getVerificationRequests(id)) {
        if (this.flows.has(request.flowId)) request.free();
        else this.watch(user, request);
      }
    }
  }

  private watch(user: string, request: VerificationRequest): void {
    const flowId = request.flowId;
    this.flows.set(flowId, { request, sas: null, user, sasStarted: false, last: null, declined: null });
    request.registerChangesCallback(async () => this.changed(flowId));
    this.changed(flowId);
  }

  /**
   * Take the steps nobody needs to click: the side that asked starts SAS
   * once the other accepted; the other side accepts SAS once started.
   * Then the flow as the app shows it (null: not a flow of ours).
   */
  async step(flowId: string): Promise<VerificationView | null> {
    const flow = this.flows.get(flowId);
    if (!flow) return null;
    const { request } = flow;
    if (request.phase() === VerificationRequestPhase.Ready && request.weStarted() && !flow.sasStarted) {
      flow.sasStarted = true;
      const started = await request.startSas();
      if (started) {
        const [sas, out] = started;
        this.adopt(flow, flowId, sas);
        await this.send(out);
      }
    }
    if (!flow.sas && request.phase() === VerificationRequestPhase.Transitioned) {
      const v = request.getVerification();
      if (v instanceof Sas) this.adopt(flow, flowId, v);
      else (v as Qr | undefined)?.free();
    }
    const sas = flow.sas;
    if (sas && !sas.isCancelled() && !sas.isDone() && !request.weStarted() && !sas.hasBeenAccepted()) {
      // Accepting our own start answers nothing; theirs, an accept to send.
      const out = sas.accept();
      if (out) await this.send(out);
    }
    return this.view(flowId);
  }

  private adopt(flow: Flow, flowId: string, sas: Sas): void {
    flow.sas = sas;
    sas.registerChangesCallback(async () => this.changed(flowId));
  }

  /** The flow as the app shows it. */
  view(flowId: string): VerificationView | null {
    const flow = this.flows.get(flowId);
    if (!flow) return null;
    const { request, sas } = flow;
    const other = request.otherDeviceId;
    const base = {
      flowId,
      user: flow.user,
      device: other ? other.toString() : sas ? sas.otherDeviceId.toString() : null,
      weStarted: request.weStarted(),
    };
    other?.free();
    const phase = request.phase();
    let view: VerificationView;
    if (request.isCancelled() || sas?.isCancelled()) {
      const info = request.cancelInfo ?? sas?.cancelInfo();
      const byUs = info?.cancelledbyUs() ?? false;
      // Declined: ended by the side that was asked, before it accepted (a
      // request the asker withdrew was cancelled, not declined).
      flow.declined ??= (flow.last === 'requested' && byUs) || (flow.last === 'waiting' && !byUs);
      view = {
        ...base,
        state: 'cancelled',
        cancel: { code: info?.cancelCode() ?? 'm.user', byUs, reason: info?.reason() ?? '', declined: flow.declined },
      };
      info?.free();
    } else if (request.isDone() || sas?.isDone()) {
      view = { ...base, state: 'done' };
    } else if (phase === VerificationRequestPhase.Created || phase === VerificationRequestPhase.Requested) {
      view = { ...base, state: request.weStarted() ? 'waiting' : 'requested' };
    } else if (sas && sas.canBePresented()) {
      const emoji = sas.emoji() ?? [];
      const decimals = sas.decimals();
      view = {
        ...base,
        state: sas.haveWeConfirmed() ? 'confirmed' : 'comparing',
        emoji: emoji.map((e) => {
          const shown = { symbol: e.symbol, name: e.description };
          e.free();
          return shown;
        }),
        decimals: decimals ? [...decimals] : [],
      };
    } else {
      view = { ...base, state: 'starting' };
    }
    flow.last = view.state;
    return view;
  }

  /** Accept a request from someone else (this device offers emoji). */
  async accept(flowId: string): Promise<void> {
    const flow = this.flows.get(flowId);
    const out = flow?.request.acceptWithMethods([VerificationMethod.SasV1]);
    if (out) await this.send(out);
  }

  /** The emoji match: confirm (the device is verified once the other side confirms too). */
  async confirm(flowId: string): Promise<void> {
    const sas = this.flows.get(flowId)?.sas;
    if (!sas) return;
    for (const out of await sas.confirm()) await this.send(out);
  }

  /**
   * End the flow, telling the other side why: `m.mismatched_sas` (the emoji
   * differ), `m.user` (declined or cancelled).
   */
  async cancel(flowId: string, code: 'm.user' | 'm.mismatched_sas'): Promise<void> {
    const flow = this.flows.get(flowId);
    if (!flow) return;
    const out = flow.sas && !flow.sas.isCancelled() && !flow.sas.isDone() ? flow.sas.cancelWithCode(code) : flow.request.cancel();
    if (out) await this.send(out);
  }

  /** Flows still under way (for the timeout check). */
  active(): string[] {
    return [...this.flows.entries()].filter(([, f]) => !f.request.isCancelled() && !f.request.isDone() && !f.sas?.isCancelled() && !f.sas?.isDone()).map(([id]) => id);
  }

  /** Forget a finished flow the person closed. */
  forget(flowId: string): void {
    const flow = this.flows.get(flowId);
    if (!flow) return;
    this.flows.delete(flowId);
    flow.sas?.free();
    flow.request.free();
  }

  private async send(out: Outgoing): Promise<void> {
    if (!(out instanceof ToDeviceRequest)) {
      // In-room verification is not used: Hark verifies over to-device messages only.
      out.free();
      return;
    }
    await this.api.sendToDevice(out.event_type, out.txn_id, { messages: JSON.parse(out.body).messages });
    await this.machine.markRequestAsSent(out.id, RequestType.ToDevice, '{}');
    out.free();
  }
}
