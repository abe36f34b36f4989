/**
 * A simulated device's own stop button (the red mushroom on the machine, a drone's
 * kill switch on its transmitter): pressing it stops the device at once, as its own
 * circuit would, and it stays engaged until released. The adapter sees it through
 * `Driver.stopEngaged()` and latches an e-stop that only a local reset, then a
 * supervisor's reset, clear.
 *
 * @example
 *   const excavator = new SimExcavator();
 *   excavator.stopButton.press();    // motion zeroed; excavator.stopEngaged() === true
 *   excavator.stopButton.release();
 */
export class SimStopButton {
  /** What pressing does on the device itself (zero motion; a drone lands). */
  private readonly onPress: () => void;
  /** Held down. */
  private engaged = false;

  constructor(onPress: () => void) {
    this.onPress = onPress;
  }

  get pressed(): boolean {
    return this.engaged;
  }

  press(): void {
    this.engaged = true;
    this.onPress();
  }

  release(): void {
    this.engaged = false;
  }
}
