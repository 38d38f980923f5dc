// A small event emitter that runs in browsers and Node alike (node:events is not in browsers).
export class Emitter {
  #listeners = new Map();

  on(name, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    if (!this.#listeners.has(name)) this.#listeners.set(name, []);
    this.#listeners.get(name).push(fn);
    return this;
  }

  once(name, fn) {
    const wrapper = (...args) => {
      this.off(name, wrapper);
      fn(...args);
    };
    return this.on(name, wrapper);
  }

  off(name, fn) {
    const list = this.#listeners.get(name);
    if (list) {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  listenerCount(name) {
    return this.#listeners.get(name)?.length ?? 0;
  }

  // Calls each listener of `name`; a listener that throws does not stop the others (the error is reported on
  // the console, as a browser's EventTarget does).
  emit(name, ...args) {
    const list = this.#listeners.get(name);
    if (!list || list.length === 0) return false;
    for (const fn of [...list]) {
      try {
        fn(...args);
      } catch (err) {
        console.error(err);
      }
    }
    return true;
  }
}
