/* Offline story player (docs/design.md §5). Plain ES2020, no dependencies.
 *
 * The bundle's manifest is embedded in #story-manifest as JSON. Everything
 * taken from it (titles, descriptions, prompts, labels, cue names) reaches the
 * page through textContent or DOM properties only, never as HTML.
 *
 * Flow: start screen -> scenelet -> shots (key frame, lead-in, narration,
 * pause) -> next: linear (on its own) | branch (choice overlay) | terminal |
 * incomplete. Every wait goes through one pausable clock so that pause/resume
 * keeps the remaining time, and every step carries an epoch token so that a
 * late media event from an earlier shot can never move the story.
 *
 * The viewer's path (scenelets visited, root first) is the history: "back to
 * last choice" cuts it at the latest branch, "previous shot" walks back along
 * it a shot at a time, the "story so far" panel lists the captions it showed,
 * and it is saved in localStorage (per story id and export time) so a
 * reopened page can continue.
 */
(() => {
  'use strict';

  /** All pacing in one place. `?speed=N` divides every "scaled" wait. */
  const TIMING = Object.freeze({
    leadInMs: 700, // key frame on screen before its narration starts
    afterNarrationMs: 900, // breath after a narration before the next shot
    noNarrationHoldMs: 4000, // how long a shot without (working) narration stays up
    branchNarrationDelayMs: 600, // choice overlay settles before the prompt is read
    musicFadeMs: 1600, // cross-fade between cues, and fade-out at the end
    musicFadeStepMs: 40, // volume ramp granularity (not scaled)
    // Safety nets for narration that neither plays nor fails (real time, not
    // scaled: they measure media, not pacing).
    narrationLoadTimeoutMs: 10000,
    narrationEndGraceMs: 2500,
  });
  const MUSIC_VOLUME = 0.32;
  const NARRATION_VOLUME = 1;
  const MAX_EVENTS = 1000;
  const MAX_SAVED_PATH = 100000;

  const speed = readSpeed();
  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $('app'),
    backdrop: $('backdrop'),
    frames: [$('frame-a'), $('frame-b')],
    placeholder: $('placeholder'),
    topbarTitle: $('topbar-title'),
    progress: $('progress'),
    story: $('story'),
    caption: $('caption'),
    cue: $('cue'),
    cueName: $('cue-name'),
    pausedBadge: $('paused-badge'),
    soundPrompt: $('sound-prompt'),
    startScreen: $('start-screen'),
    startTitle: $('start-title'),
    startActions: $('start-actions'),
    startButton: $('start-button'),
    startLabel: $('start-label'),
    continueButton: $('continue-button'),
    choiceScreen: $('choice-screen'),
    choicePrompt: $('choice-prompt'),
    choiceList: $('choice-list'),
    terminalScreen: $('terminal-screen'),
    terminalHeading: $('terminal-heading'),
    restartButton: $('restart-button'),
    incompleteScreen: $('incomplete-screen'),
    incompleteHeading: $('incomplete-heading'),
    incompleteBack: $('incomplete-back'),
    backToChoice: [...document.querySelectorAll('.back-to-choice')],
    confirmScreen: $('confirm-screen'),
    confirmStay: $('confirm-stay'),
    confirmLeave: $('confirm-leave'),
    errorScreen: $('error-screen'),
    errorText: $('error-text'),
    controls: $('controls'),
    pauseButton: $('pause-button'),
    pauseLabel: $('pause-label'),
    iconPause: $('icon-pause'),
    iconPlay: $('icon-play'),
    nextButton: $('next-button'),
    previousButton: $('previous-button'),
    historyButton: $('history-button'),
    historyScreen: $('history-screen'),
    historyClose: $('history-close'),
    historyList: $('history-list'),
    backButton: $('back-button'),
    captionsButton: $('captions-button'),
    muteButton: $('mute-button'),
    muteWaves: $('mute-waves'),
    muteCross: $('mute-cross'),
    fullscreenButton: $('fullscreen-button'),
    homeButton: $('home-button'),
  };

  const state = {
    screen: 'loading', // loading | start | playing | choice | terminal | incomplete | error
    sceneletId: null,
    path: [], // scenelet ids of this run, root first: the history "back" and "continue" use
    shotPos: -1, // position in the scenelet's shots array
    phase: null, // lead-in | narration | after | hold | choice | null
    paused: false,
    captions: true,
    muted: false,
    soundBlocked: false, // the browser refused to play sound until the next gesture
    confirming: false, // "leave for the title screen?" is open
    history: false, // the "story so far" panel is open: {wasPaused, returnTo}
    image: 'none', // loading | loaded | error | none
    imagePath: null,
    choices: [], // [{sceneletId, label}] offered on the choice screen
  };
  const events = [];
  let epoch = 0; // bumped whenever the current step is abandoned
  let story = null;

  function note(type, detail) {
    events.push(Object.assign({ type, t: Math.round(performance.now()) }, detail || {}));
    if (events.length > MAX_EVENTS) events.shift();
  }

  function readSpeed() {
    const raw = new URLSearchParams(window.location.search).get('speed');
    const value = raw === null ? 1 : Number(raw);
    return Number.isFinite(value) && value > 0 ? Math.min(value, 1000) : 1;
  }

  const scaled = (ms) => ms / speed;

  // ---------------------------------------------------------------- story data

  const text = (value) => (typeof value === 'string' ? value.trim() : '');
  const path = (value) => (typeof value === 'string' && value.trim() !== '' ? value : null);
  /** A bundle path as a relative URL: each segment percent-encoded (`Storm #1.m4a` is not a fragment). */
  const mediaUrl = (value) => value.split('/').map(encodeURIComponent).join('/');

  function readLines(raw) {
    if (!Array.isArray(raw)) return [];
    return raw
      .filter((line) => line && text(line.text))
      .map((line) => ({ speaker: text(line.speaker), text: text(line.text) }));
  }

  /** One scenelet of the manifest, normalised (tolerant: bundles can be work in progress). */
  function readScenelet(raw) {
    return {
      id: raw.id,
      label: text(raw.label),
      description: text(raw.description),
      shots: (Array.isArray(raw.shots) ? raw.shots : [])
        .filter((shot) => shot && (path(shot.imagePath) || path(shot.audioPath)))
        .map((shot) => ({
          shotIndex: shot.shotIndex,
          imagePath: path(shot.imagePath),
          audioPath: path(shot.audioPath),
          lines: readLines(shot.lines),
        })),
      next: raw.next && typeof raw.next === 'object' ? raw.next : { type: 'incomplete' },
      branchAudioPath: path(raw.branchAudioPath),
    };
  }

  // ------------------------------------------------------ chunked manifest read

  /**
   * Reads the manifest's outline in slices of at most OUTLINE_SLICE_MS each,
   * yielding to the browser between them, so a big story (10,000 scenelets,
   * 12 MB) never blocks the page for one long task as a single JSON.parse
   * would. It finds the top-level "scenelets" array, each element's text span
   * and its "id"; everything else is parsed at once (it is small) and each
   * scenelet only when the story reaches it. Resolves to null when the text is
   * not shaped as expected, and the caller falls back to one JSON.parse.
   */
  const OUTLINE_SLICE_MS = 12;
  const QUOTE = 34;
  const BACKSLASH = 92;

  const nextTask = (() => {
    // a message is not clamped to 4 ms like a nested setTimeout(0)
    const channel = new MessageChannel();
    const queue = [];
    channel.port1.onmessage = () => queue.shift()();
    return () => new Promise((resolve) => {
      queue.push(resolve);
      channel.port2.postMessage(null);
    });
  })();

  /** Index of the quote closing the string that opens at `at`, or -1. */
  function stringEnd(source, at) {
    let quote = at;
    for (;;) {
      quote = source.indexOf('"', quote + 1);
      if (quote < 0) return -1;
      let slashes = 0;
      while (source.charCodeAt(quote - 1 - slashes) === BACKSLASH) slashes += 1;
      if (slashes % 2 === 0) return quote;
    }
  }

  function nextNonSpace(source, at) {
    let i = at;
    while (i < source.length && ' \t\r\n'.includes(source[i])) i += 1;
    return i;
  }

  async function outlineManifest(source) {
    const spans = new Map(); // scenelet id -> [start, end) of its object
    let depth = 0;
    let key1 = null; // the latest key of the top-level object
    let listStart = -1; // '[' of the scenelets array (its depth is 2)
    let listEnd = -1;
    let itemStart = -1; // '{' of the current scenelet (depth 3 inside it)
    let itemKey = null;
    let itemId = null;
    let i = 0;
    let sliceStart = performance.now();
    let count = 0;
    while (i < source.length) {
      count += 1;
      if ((count & 1023) === 0 && performance.now() - sliceStart > OUTLINE_SLICE_MS) {
        await nextTask();
        sliceStart = performance.now();
      }
      const c = source.charCodeAt(i);
      if (c === QUOTE) {
        const end = stringEnd(source, i);
        if (end < 0) return null;
        const after = nextNonSpace(source, end + 1);
        const isKey = source.charCodeAt(after) === 58; // ':'
        if (isKey && depth === 1) key1 = source.slice(i + 1, end);
        else if (isKey && depth === 3 && itemStart >= 0) itemKey = source.slice(i + 1, end);
        else if (!isKey && depth === 3 && itemStart >= 0 && itemKey === 'id') itemId = JSON.parse(source.slice(i, end + 1));
        i = end + 1;
        continue;
      }
      if (c === 123 || c === 91) {
        // '{' or '['
        depth += 1;
        if (c === 91 && depth === 2 && key1 === 'scenelets' && listStart < 0) listStart = i;
        else if (c === 123 && depth === 3 && listStart >= 0 && listEnd < 0) {
          itemStart = i;
          itemKey = null;
          itemId = null;
        }
      } else if (c === 125 || c === 93) {
        // '}' or ']'
        if (c === 125 && depth === 3 && itemStart >= 0) {
          if (typeof itemId === 'string') spans.set(itemId, [itemStart, i + 1]);
          itemStart = -1;
        } else if (c === 93 && depth === 2 && listStart >= 0 && listEnd < 0) {
          listEnd = i + 1;
        }
        depth -= 1;
        if (depth === 0) break;
      }
      i += 1;
    }
    if (listStart < 0 || listEnd < 0 || depth !== 0) return null;
    // all but the scenelets is small: parse it in one go
    const head = JSON.parse(source.slice(0, listStart) + '[]' + source.slice(listEnd));
    if (!head || typeof head !== 'object') return null;
    return { head, spans };
  }

  /**
   * Normalises the manifest into lookups. A big story (30,000 shots) is read
   * in slices (outlineManifest), and each scenelet is parsed and normalised
   * only when the story reaches it, so no task blocks the page for long.
   */
  async function loadStory() {
    const node = $('story-manifest');
    const source = node ? node.textContent : '';
    performance.mark('player-parse-start');
    let outline = null;
    try {
      outline = await outlineManifest(source);
    } catch (err) {
      outline = null; // not the shape we slice: the plain parse below says what is wrong
    }
    const manifest = outline ? outline.head : JSON.parse(source);
    performance.mark('player-parsed');
    if (!manifest || typeof manifest !== 'object' || !Array.isArray(manifest.scenelets)) {
      throw new Error('The story data has no scenelets.');
    }
    const raws = new Map();
    if (outline) {
      for (const [id, [start, end]] of outline.spans) raws.set(id, () => {
          try {
            return JSON.parse(source.slice(start, end));
          } catch (err) {
            return { next: { type: 'incomplete' } }; // a damaged scenelet plays as an unwritten path
          }
        });
    } else {
      for (const raw of manifest.scenelets) {
        if (raw && typeof raw.id === 'string') raws.set(raw.id, () => raw);
      }
    }
    const read = new Map();
    const byId = {
      has: (id) => raws.has(id),
      get(id) {
        let scenelet = read.get(id);
        if (!scenelet && raws.has(id)) {
          scenelet = readScenelet(Object.assign(raws.get(id)(), { id }));
          read.set(id, scenelet);
        }
        return scenelet;
      },
    };
    const rootId = typeof manifest.rootSceneletId === 'string' ? manifest.rootSceneletId : null;
    if (!rootId || !byId.has(rootId)) throw new Error('The story data has no opening scene.');

    const music = manifest.music && typeof manifest.music === 'object' ? manifest.music : {};
    const cuePaths = new Map();
    for (const cue of Array.isArray(music.cues) ? music.cues : []) {
      // the first cue of a name wins, like the first cue to claim a scenelet
      if (cue && typeof cue.cueName === 'string' && path(cue.audioPath) && !cuePaths.has(cue.cueName)) {
        cuePaths.set(cue.cueName, cue.audioPath);
      }
    }
    const cueMap = music.sceneletCueMap && typeof music.sceneletCueMap === 'object' ? music.sceneletCueMap : {};
    const metadata = manifest.metadata && typeof manifest.metadata === 'object' ? manifest.metadata : {};
    return {
      title: text(metadata.title) || 'Untitled story',
      storyId: text(metadata.storyId),
      exportedAt: text(metadata.exportedAt),
      rootId,
      byId,
      cueFor: (id) => (Object.prototype.hasOwnProperty.call(cueMap, id) && typeof cueMap[id] === 'string' ? cueMap[id] : null),
      cuePaths,
    };
  }

  function images(sceneletId) {
    const scenelet = story.byId.get(sceneletId);
    return scenelet ? scenelet.shots.filter((s) => s.imagePath).map((s) => s.imagePath) : [];
  }

  function firstImage(sceneletId) {
    return images(sceneletId)[0] || null;
  }

  // ------------------------------------------------------------ pausable clock

  /** setTimeout with pause/resume that keeps the remaining time. */
  const clock = {
    timers: new Set(),
    paused: false,
    after(ms, fn, { isScaled = true } = {}) {
      const timer = { remaining: isScaled ? scaled(ms) : ms, fn, handle: null, startedAt: 0 };
      this.timers.add(timer);
      if (!this.paused) this.arm(timer);
      return timer;
    },
    arm(timer) {
      timer.startedAt = performance.now();
      timer.handle = setTimeout(() => {
        this.timers.delete(timer);
        timer.fn();
      }, Math.max(0, timer.remaining));
    },
    cancel(timer) {
      if (!timer) return;
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    },
    pause() {
      this.paused = true;
      for (const timer of this.timers) {
        clearTimeout(timer.handle);
        timer.remaining -= performance.now() - timer.startedAt;
      }
    },
    resume() {
      this.paused = false;
      for (const timer of this.timers) this.arm(timer);
    },
    clear() {
      for (const timer of this.timers) clearTimeout(timer.handle);
      this.timers.clear();
    },
  };

  // -------------------------------------------------------------------- images

  let frontFrame = 0;
  let imageToken = 0;

  /** Cross-fades to a key frame; a missing or broken image shows the placeholder. */
  function showImage(imagePath) {
    const token = ++imageToken;
    state.imagePath = imagePath;
    if (!imagePath) {
      showPlaceholder('none');
      return;
    }
    state.image = 'loading';
    const incoming = ui.frames[1 - frontFrame];
    incoming.onload = () => {
      if (token !== imageToken) return;
      const outgoing = ui.frames[frontFrame];
      incoming.classList.remove('is-visible');
      void incoming.offsetWidth; // restart the push-in animation
      incoming.classList.add('is-visible');
      outgoing.classList.remove('is-visible');
      frontFrame = 1 - frontFrame;
      ui.placeholder.hidden = true;
      ui.backdrop.src = mediaUrl(imagePath);
      ui.backdrop.classList.add('is-visible');
      state.image = 'loaded';
    };
    incoming.onerror = () => {
      if (token !== imageToken) return;
      note('image-error', { path: imagePath });
      showPlaceholder('error');
    };
    const url = mediaUrl(imagePath);
    if (incoming.getAttribute('src') === url && incoming.complete) {
      // same file again: browsers need not fire load/error a second time
      if (incoming.naturalWidth > 0) incoming.onload();
      else incoming.onerror();
    } else {
      incoming.src = url;
    }
  }

  function showPlaceholder(reason) {
    state.image = reason;
    for (const frame of ui.frames) frame.classList.remove('is-visible');
    ui.backdrop.classList.remove('is-visible');
    ui.placeholder.hidden = false;
  }

  // ------------------------------------------------------------------ prefetch

  /**
   * Media the story will need next, requested while the current shot plays so
   * a shot change over a network never waits on a download that could have
   * started earlier. Images stay referenced so the browser keeps them in its
   * memory cache; narration elements are handed to playNarration, so the
   * bytes are fetched once. Paths are used as given (any format).
   */
  const PREFETCH_KEEP = 24;
  const prefetched = new Map(); // url -> Image | HTMLAudioElement, oldest first

  function keep(url, el) {
    prefetched.set(url, el);
    while (prefetched.size > PREFETCH_KEEP) {
      const [oldest, old] = prefetched.entries().next().value;
      prefetched.delete(oldest);
      if (old instanceof HTMLMediaElement) {
        old.removeAttribute('src');
        old.load();
      }
    }
  }

  function preloadImage(imagePath) {
    if (!imagePath || prefetched.has(mediaUrl(imagePath))) return;
    const img = new Image();
    img.decoding = 'async';
    img.src = mediaUrl(imagePath);
    keep(img.getAttribute('src'), img);
  }

  function preloadAudio(audioPath) {
    if (!audioPath || prefetched.has(mediaUrl(audioPath))) return;
    const el = new Audio();
    el.preload = 'auto';
    el.src = mediaUrl(audioPath);
    keep(el.getAttribute('src'), el);
  }

  /** A narration element for `audioPath`: the prefetched one (already loading) or a new one. */
  function takeAudio(audioPath) {
    const url = mediaUrl(audioPath);
    const el = prefetched.get(url);
    prefetched.delete(url);
    if (el instanceof HTMLMediaElement && el.error === null) return el;
    const fresh = new Audio();
    fresh.preload = 'auto';
    fresh.src = url;
    return fresh;
  }

  /** What follows shot `pos` of `scenelet`: the next shot, the next scene's first, or each choice's first key frame. */
  function prefetchAfter(scenelet, pos) {
    const following = scenelet.shots[pos + 1];
    if (following) {
      preloadImage(following.imagePath);
      preloadAudio(following.audioPath);
      return;
    }
    if (scenelet.next.type === 'linear') {
      const next = story.byId.get(scenelet.next.sceneletId);
      if (next && next.shots.length > 0) {
        preloadImage(next.shots[0].imagePath);
        preloadAudio(next.shots[0].audioPath);
      }
    } else if (scenelet.next.type === 'branch') {
      for (const choice of branchChoices(scenelet)) preloadImage(firstImage(choice.sceneletId));
      preloadAudio(scenelet.branchAudioPath);
    }
  }

  // --------------------------------------------------------------------- music

  /** Background music: one cue at a time, cross-faded, continuous across scenelets sharing a cue. */
  const music = {
    wanted: null, // cue the story asks for now (null = silence)
    current: null, // {cue, el, fade, released} audible or paused
    outgoing: new Set(),

    /** Called on every scenelet: a cue that failed before is tried again on the next scene. */
    setCue(cue) {
      if (cue === this.wanted && (this.current || cue === null)) return; // same cue: no restart
      this.wanted = cue;
      const previous = this.current;
      this.current = null;
      if (previous) {
        this.outgoing.add(previous);
        this.fade(previous, 0, () => this.release(previous));
      }
      this.showName(null);
      if (cue === null) return;
      const audioPath = story.cuePaths.get(cue);
      if (!audioPath) return;
      const entry = { cue, el: new Audio(), fade: null, released: false };
      entry.el.loop = true;
      entry.el.preload = 'auto';
      entry.el.volume = 0;
      entry.el.muted = state.muted;
      entry.el.addEventListener('error', () => this.fail(entry));
      entry.el.src = mediaUrl(audioPath);
      this.current = entry;
      note('music', { cue });
      this.showName(cue);
      if (state.paused) {
        entry.el.volume = MUSIC_VOLUME; // starts at full level on resume
      } else {
        this.play(entry);
        this.fade(entry, MUSIC_VOLUME);
      }
    },

    play(entry) {
      const attempt = entry.el.play();
      if (attempt) {
        attempt.catch((err) => {
          // a pause() before play() settled is not a failure; resume retries
          if (entry.released || state.paused) return;
          if (refused(err)) soundRefused('music'); // kept: played again after the next gesture
          else this.fail(entry);
        });
      }
    },

    /** A cue that cannot play is skipped silently until the next scene. */
    fail(entry) {
      if (entry.released) return;
      note('music-failed', { cue: entry.cue });
      if (this.current === entry) {
        this.current = null;
        this.showName(null);
      }
      this.release(entry);
    },

    fade(entry, target, done) {
      clearInterval(entry.fade);
      const el = entry.el;
      const steps = Math.round(scaled(TIMING.musicFadeMs) / TIMING.musicFadeStepMs);
      if (steps < 1) {
        el.volume = target;
        if (done) done();
        return;
      }
      const from = el.volume;
      let step = 0;
      entry.fade = setInterval(() => {
        step += 1;
        el.volume = Math.min(1, Math.max(0, from + ((target - from) * step) / steps));
        if (step >= steps) {
          clearInterval(entry.fade);
          entry.fade = null;
          if (done) done();
        }
      }, TIMING.musicFadeStepMs);
    },

    release(entry) {
      if (entry.released) return;
      entry.released = true;
      clearInterval(entry.fade);
      this.outgoing.delete(entry);
      entry.el.pause();
      entry.el.removeAttribute('src');
      entry.el.load(); // drops the decoder and the file handle
    },

    pause() {
      // fades would run on while paused: finish them now
      for (const entry of [...this.outgoing]) this.release(entry);
      if (this.current) {
        clearInterval(this.current.fade);
        this.current.el.volume = MUSIC_VOLUME;
        this.current.el.pause();
      }
    },

    resume() {
      if (this.current) this.play(this.current);
    },

    /** After sound was refused: the next gesture starts the current cue again. */
    retry() {
      if (this.current && this.current.el.paused && !state.paused) {
        this.current.el.volume = MUSIC_VOLUME;
        this.play(this.current);
      }
    },

    setMuted(muted) {
      for (const entry of [this.current, ...this.outgoing]) if (entry) entry.el.muted = muted;
    },

    /** Stops everything at once (used when leaving to the title screen). */
    stopNow() {
      this.wanted = null;
      for (const entry of [...this.outgoing]) this.release(entry);
      if (this.current) this.release(this.current);
      this.current = null;
      this.showName(null);
    },

    showName(cue) {
      ui.cueName.textContent = cue || '';
      ui.cue.hidden = !cue;
    },

    playing() {
      return Boolean(this.current && !this.current.el.paused && !this.current.released);
    },
  };

  // ----------------------------------------------------------------- narration

  let narration = null; // {el, token, settled, stop()}
  let branchNarration = null;

  /**
   * Plays one narration clip; calls onEnd when it finishes, onFail when it
   * cannot play (missing, broken, rejected play(), or stuck). Exactly one of
   * the two is called, and never for a stale token.
   */
  function playNarration(audioPath, token, onEnd, onFail) {
    const el = takeAudio(audioPath);
    el.volume = NARRATION_VOLUME;
    el.muted = state.muted;
    const clip = { el, settled: false, watchdog: null };
    const settle = (callback, reason) => {
      if (clip.settled || token !== epoch) return;
      clip.settled = true;
      clock.cancel(clip.watchdog);
      callback(reason);
    };
    const watch = (ms) => {
      clock.cancel(clip.watchdog);
      clip.watchdog = clock.after(ms, () => settle(onFail, 'stalled'), { isScaled: false });
    };
    clip.play = () => {
      const attempt = el.play();
      if (attempt) {
        attempt.catch((err) => {
          // pausing before play() settles rejects it; resume will try again
          if (state.paused || clip.settled || token !== epoch) return;
          if (refused(err)) soundRefused('narration');
          settle(onFail, `play-rejected:${err && err.name}`);
        });
      }
    };
    clip.stop = () => {
      clip.settled = true;
      clock.cancel(clip.watchdog);
      el.pause();
      el.removeAttribute('src');
      el.load();
    };
    el.addEventListener('ended', () => settle(onEnd));
    el.addEventListener('error', () => settle(onFail, 'error'));
    el.addEventListener('loadedmetadata', () => {
      if (!clip.settled && Number.isFinite(el.duration)) {
        watch((el.duration - el.currentTime) * 1000 + TIMING.narrationEndGraceMs);
      }
    });
    watch(TIMING.narrationLoadTimeoutMs);
    if (el.readyState >= 1 && Number.isFinite(el.duration)) {
      // prefetched: its metadata event has passed already
      watch(el.duration * 1000 + TIMING.narrationEndGraceMs);
    }
    if (!state.paused) clip.play();
    return clip;
  }

  function stopNarration() {
    if (narration) narration.stop();
    narration = null;
  }

  function stopBranchNarration() {
    if (branchNarration) {
      branchNarration.pause();
      branchNarration.removeAttribute('src');
      branchNarration.load();
    }
    branchNarration = null;
  }

  // ------------------------------------------------------------------ sound

  const refused = (err) => Boolean(err && err.name === 'NotAllowedError');
  let refusedShot = null; // {token, scenelet, pos}: the shot whose narration the browser refused

  /** The browser's autoplay policy said no: tell the viewer, try again on their next gesture. */
  function soundRefused(what) {
    note('sound-refused', { what });
    if (what === 'narration') {
      const scenelet = story.byId.get(state.sceneletId);
      refusedShot = scenelet ? { token: epoch, scenelet, pos: state.shotPos } : null;
    }
    if (state.soundBlocked) return;
    state.soundBlocked = true;
    ui.soundPrompt.hidden = false;
  }

  /** Runs inside a click or key press, where play() is allowed. */
  function retrySound() {
    if (!state.soundBlocked) return;
    state.soundBlocked = false;
    ui.soundPrompt.hidden = true;
    note('sound-retry');
    music.retry();
    if (branchNarration && branchNarration.paused && !branchNarration.ended && !state.paused) {
      branchNarration.play().catch(() => {});
    }
    const shot = refusedShot;
    refusedShot = null;
    // the refused narration was being held in silence: play it now instead
    if (shot && shot.token === epoch && state.phase === 'hold' && !state.paused) {
      clock.clear();
      beginNarration(shot.scenelet, shot.pos, shot.token);
    }
  }

  function setMuted(muted) {
    state.muted = muted;
    if (narration) narration.el.muted = muted;
    if (branchNarration) branchNarration.muted = muted;
    music.setMuted(muted);
    ui.muteButton.setAttribute('aria-pressed', String(muted));
    ui.muteWaves.toggleAttribute('hidden', muted);
    ui.muteCross.toggleAttribute('hidden', !muted);
    note('mute', { muted });
  }

  function toggleFullscreen() {
    const root = document.documentElement;
    const done = document.fullscreenElement ? document.exitFullscreen() : root.requestFullscreen && root.requestFullscreen();
    if (done && done.catch) done.catch(() => {}); // refused (e.g. in a frame): nothing to do
  }

  // ------------------------------------------------------------ saved progress

  /** Where the viewer left off, per story and export; silently off when storage is unavailable. */
  const progress = {
    key: null,
    init() {
      this.key = `story-bundle:${story.storyId}:${story.exportedAt}`;
    },
    save() {
      try {
        // the shot and the screen too: Continue comes back to exactly this place
        const place = { path: state.path, shot: Math.max(0, state.shotPos), screen: state.screen };
        window.localStorage.setItem(this.key, JSON.stringify(place));
      } catch (err) {
        // file:// with storage off, private mode, quota: the story plays on without it
      }
    },
    /** The saved place ({path, shot, screen}) if its path still walks this story from the root, else null. */
    load() {
      let saved = null;
      try {
        saved = JSON.parse(window.localStorage.getItem(this.key) || 'null');
      } catch (err) {
        return null;
      }
      const walk = saved && Array.isArray(saved.path) ? saved.path : null;
      if (!walk || walk.length === 0 || walk.length > MAX_SAVED_PATH) return null;
      if (walk[0] !== story.rootId) return null;
      for (let i = 1; i < walk.length; i += 1) {
        if (!followers(story.byId.get(walk[i - 1])).includes(walk[i])) return null;
      }
      const last = story.byId.get(walk[walk.length - 1]);
      const shot = Number.isInteger(saved.shot) && saved.shot >= 0 && saved.shot < last.shots.length ? saved.shot : 0;
      // a screen the scene cannot show any more (the story changed) resumes it from that shot
      const fits = {
        choice: last.next.type === 'branch' && branchChoices(last).length > 0,
        terminal: last.next.type === 'terminal',
        incomplete: last.next.type !== 'terminal' && !(last.next.type === 'branch' && branchChoices(last).length > 0),
      };
      const screen = fits[saved.screen] ? saved.screen : 'playing';
      return { path: walk, shot, screen };
    },
  };

  /** Scenelets that can follow `scenelet` in a path. */
  function followers(scenelet) {
    if (!scenelet) return [];
    if (scenelet.next.type === 'linear') return story.byId.has(scenelet.next.sceneletId) ? [scenelet.next.sceneletId] : [];
    if (scenelet.next.type === 'branch') return branchChoices(scenelet).map((c) => c.sceneletId);
    return [];
  }

  // ----------------------------------------------------------------- the story

  /** Abandons the current step: timers, narration and late callbacks. */
  function abandonStep() {
    epoch += 1;
    clock.clear();
    stopNarration();
    stopBranchNarration();
  }

  function startStory() {
    if (state.screen !== 'start') return;
    note('start');
    state.path = [];
    enterScenelet(story.rootId);
    ui.story.focus({ preventScroll: true });
  }

  function continueStory() {
    const saved = state.screen === 'start' ? progress.load() : null;
    if (!saved) return;
    const sceneletId = saved.path[saved.path.length - 1];
    note('continue', { sceneletId, shot: saved.shot, screen: saved.screen });
    if (saved.screen === 'playing') {
      state.path = saved.path.slice(0, -1);
      enterScenelet(sceneletId, saved.shot);
      ui.story.focus({ preventScroll: true });
      return;
    }
    // an overlay: its scene's last frame (and music) behind it, as when it was left
    const scenelet = story.byId.get(sceneletId);
    state.path = saved.path.slice();
    state.sceneletId = sceneletId;
    state.shotPos = saved.shot;
    if (scenelet.shots.length > 0) {
      showImage(scenelet.shots[saved.shot].imagePath);
      showCaption(scenelet, scenelet.shots[saved.shot]);
    }
    if (saved.screen === 'choice') {
      music.setCue(story.cueFor(sceneletId));
      showChoices(scenelet);
    } else {
      showEnd(saved.screen);
    }
  }

  function enterScenelet(sceneletId, startPos = 0) {
    abandonStep();
    const scenelet = story.byId.get(sceneletId);
    if (!scenelet) {
      showEnd('incomplete'); // a dangling reference is treated as an unwritten path
      return;
    }
    state.sceneletId = sceneletId;
    state.path.push(sceneletId);
    setScreen('playing');
    progress.save();
    music.setCue(story.cueFor(sceneletId));
    showCaption(scenelet, null);
    note('scenelet', { sceneletId, label: scenelet.label });
    if (scenelet.shots.length === 0) finishScenelet(scenelet);
    else playShot(scenelet, Math.min(startPos, scenelet.shots.length - 1));
  }

  function playShot(scenelet, pos) {
    abandonStep();
    const token = epoch;
    const shot = scenelet.shots[pos];
    state.shotPos = pos;
    state.phase = 'lead-in';
    progress.save();
    showImage(shot.imagePath);
    showCaption(scenelet, shot);
    preloadAudio(shot.audioPath); // asked for now, not only after the lead-in
    prefetchAfter(scenelet, pos);
    note('shot', { sceneletId: scenelet.id, shotIndex: shot.shotIndex, imagePath: shot.imagePath, audioPath: shot.audioPath });
    clock.after(TIMING.leadInMs, () => beginNarration(scenelet, pos, token));
  }

  function beginNarration(scenelet, pos, token) {
    if (token !== epoch) return;
    const shot = scenelet.shots[pos];
    const advance = () => {
      if (token !== epoch) return;
      if (pos + 1 < scenelet.shots.length) playShot(scenelet, pos + 1);
      else finishScenelet(scenelet);
    };
    const hold = () => {
      state.phase = 'hold';
      clock.after(TIMING.noNarrationHoldMs, advance);
    };
    if (!shot.audioPath) {
      note('narration-none', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
      hold();
      return;
    }
    state.phase = 'narration';
    note('narration-start', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
    narration = playNarration(
      shot.audioPath,
      token,
      () => {
        note('narration-end', { sceneletId: scenelet.id, shotIndex: shot.shotIndex });
        state.phase = 'after';
        clock.after(TIMING.afterNarrationMs, advance);
      },
      (reason) => {
        // missing or broken narration never stops the story: hold like a silent shot
        note('narration-skipped', { sceneletId: scenelet.id, shotIndex: shot.shotIndex, reason });
        hold();
      },
    );
  }

  /** → : the next shot now (or what follows the scenelet). */
  function nextShot() {
    if (state.screen !== 'playing') return;
    const scenelet = story.byId.get(state.sceneletId);
    note('next-shot', { sceneletId: scenelet.id, shotIndex: state.shotPos + 1 });
    unpause({ resumeMusic: true });
    if (state.shotPos + 1 < scenelet.shots.length) playShot(scenelet, state.shotPos + 1);
    else finishScenelet(scenelet);
  }

  const isBranch = (scenelet) => Boolean(scenelet) && scenelet.next.type === 'branch' && branchChoices(scenelet).length > 0;

  /**
   * ← : one step back along the path the viewer took. The steps of a scene
   * are its shots and then what follows them (a choice overlay, an ending), so
   * from an overlay or ending it is the scene's last shot, and from a scene's
   * first shot it is the step before it: the choice that led here (the viewer
   * chooses again) or the last shot of the scene before. At the story's first
   * shot that shot starts over. The path is cut to where the viewer now is,
   * so the saved place (Continue) is exactly this step.
   */
  function previousShot() {
    if (state.confirming || state.history || !['playing', 'choice', 'terminal', 'incomplete'].includes(state.screen)) return;
    const scenelet = story.byId.get(state.sceneletId);
    if (!scenelet) return;
    if (state.screen !== 'playing' && scenelet.shots.length > 0) {
      replayShot(state.path.length - 1, scenelet.shots.length - 1);
      return;
    }
    if (state.screen === 'playing' && state.shotPos > 0) {
      replayShot(state.path.length - 1, state.shotPos - 1);
      return;
    }
    // back across the scene boundary; a scene without shots is no step of its own
    for (let at = state.path.length - 2; at >= 0; at -= 1) {
      const before = story.byId.get(state.path[at]);
      if (isBranch(before)) {
        note('previous-shot', { sceneletId: before.id, screen: 'choice' });
        returnToChoice(at);
        return;
      }
      if (before && before.shots.length > 0) {
        replayShot(at, before.shots.length - 1);
        return;
      }
    }
    if (state.screen === 'playing' && scenelet.shots.length > 0) replayShot(state.path.length - 1, 0);
  }

  /** Plays shot `pos` of the scene at position `at` of the path, which becomes the path's end. */
  function replayShot(at, pos) {
    const sceneletId = state.path[at];
    const scenelet = story.byId.get(sceneletId);
    note('previous-shot', { sceneletId, shotIndex: scenelet.shots[pos].shotIndex, screen: 'playing' });
    const wasOverlay = state.screen !== 'playing';
    unpause({ resumeMusic: true });
    state.path = state.path.slice(0, at + 1);
    state.sceneletId = sceneletId;
    state.choices = [];
    setScreen('playing');
    music.setCue(story.cueFor(sceneletId));
    playShot(scenelet, pos);
    // the overlay that had focus is gone; a pressed control keeps it
    if (wasOverlay && !ui.controls.contains(document.activeElement)) ui.story.focus({ preventScroll: true });
  }

  /** The caption: the shot's narration script, else the scene description; all of it, scrollable. */
  function showCaption(scenelet, shot) {
    const lines = shot && shot.lines.length > 0 ? shot.lines : null;
    const nodes = [];
    if (lines) {
      for (const line of lines) {
        const p = document.createElement('p');
        p.className = 'caption__line';
        if (line.speaker) {
          const speaker = document.createElement('span');
          speaker.className = 'caption__speaker';
          speaker.textContent = line.speaker;
          const colon = document.createElement('span');
          colon.className = 'visually-hidden';
          colon.textContent = ': ';
          p.append(speaker, colon);
        }
        const words = document.createElement('span');
        words.className = 'caption__text';
        words.textContent = line.text;
        p.append(words);
        nodes.push(p);
      }
    } else if (scenelet.description) {
      const p = document.createElement('p');
      p.className = 'caption__line caption__line--description';
      p.textContent = scenelet.description;
      nodes.push(p);
    }
    ui.caption.replaceChildren(...nodes);
    ui.caption.scrollTop = 0;
    fitCaption();
  }

  /** A caption taller than its box scrolls: then it takes keyboard focus too. */
  function fitCaption() {
    const scrolls = ui.caption.scrollHeight > ui.caption.clientHeight + 1;
    if (scrolls) ui.caption.tabIndex = 0;
    else ui.caption.removeAttribute('tabindex');
  }

  /** Choices whose target is in the bundle, in manifest (script) order. */
  function branchChoices(scenelet) {
    const choices = Array.isArray(scenelet.next.choices) ? scenelet.next.choices : [];
    return choices.filter((c) => c && story.byId.has(c.sceneletId));
  }

  function finishScenelet(scenelet) {
    const next = scenelet.next;
    if (next.type === 'linear') {
      enterScenelet(next.sceneletId);
    } else if (next.type === 'branch' && branchChoices(scenelet).length > 0) {
      showChoices(scenelet);
    } else if (next.type === 'terminal') {
      showEnd('terminal');
    } else {
      showEnd('incomplete');
    }
  }

  function showChoices(scenelet) {
    abandonStep();
    const token = epoch;
    const choices = branchChoices(scenelet);
    state.choices = choices.map((c) => ({ sceneletId: c.sceneletId, label: text(c.label) }));
    state.phase = 'choice';
    ui.choicePrompt.textContent = text(scenelet.next.choicePrompt);
    ui.choiceList.replaceChildren(...choices.map(renderChoice));
    ui.choiceList.dataset.count = String(choices.length);
    setScreen('choice');
    progress.save();
    // the prompt takes focus, so no card looks chosen before the viewer picks one
    ui.choicePrompt.focus({ preventScroll: true });
    note('choice', { sceneletId: scenelet.id, choices: state.choices });
    if (scenelet.branchAudioPath) {
      clock.after(TIMING.branchNarrationDelayMs, () => {
        if (token !== epoch) return;
        // the prompt narration is a courtesy: errors are ignored, nothing waits on it
        branchNarration = takeAudio(scenelet.branchAudioPath);
        branchNarration.volume = NARRATION_VOLUME;
        branchNarration.muted = state.muted;
        note('branch-narration', { sceneletId: scenelet.id });
        if (!state.paused) {
          branchNarration.play().catch((err) => {
            if (refused(err) && token === epoch) soundRefused('branch-narration');
          });
        }
      });
    }
  }

  function renderChoice(choice, index) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'choice';
    if (index < 9) button.setAttribute('aria-keyshortcuts', String(index + 1));
    const thumb = document.createElement('span');
    thumb.className = 'choice__thumb';
    showThumbnail(thumb, images(choice.sceneletId));
    const key = document.createElement('span');
    key.className = 'choice__key';
    key.setAttribute('aria-hidden', 'true');
    key.textContent = index < 9 ? String(index + 1) : '';
    if (index >= 9) key.hidden = true;
    const label = document.createElement('span');
    label.className = 'choice__label';
    label.textContent = text(choice.label);
    button.append(thumb, key, label);
    button.addEventListener('click', () => choose(index));
    item.append(button);
    return item;
  }

  /** The target's first key frame that loads; "No preview" when none does. */
  function showThumbnail(thumb, candidates) {
    if (candidates.length === 0) {
      thumb.classList.add('is-missing');
      return;
    }
    const img = document.createElement('img');
    img.alt = '';
    img.decoding = 'async';
    let at = 0;
    img.addEventListener('error', () => {
      at += 1;
      if (at < candidates.length) {
        img.src = mediaUrl(candidates[at]);
      } else {
        img.remove();
        thumb.classList.add('is-missing');
      }
    });
    img.src = mediaUrl(candidates[0]);
    thumb.append(img);
  }

  function choose(index) {
    if (state.screen !== 'choice' || state.confirming || index < 0 || index >= state.choices.length) return;
    const target = state.choices[index];
    note('chosen', { sceneletId: target.sceneletId, index });
    stopBranchNarration();
    unpause({ resumeMusic: true });
    enterScenelet(target.sceneletId);
    ui.story.focus({ preventScroll: true });
  }

  /** Position in the path of the latest choice made before the current scenelet, or -1. */
  function lastChoiceIndex() {
    for (let i = state.path.length - 2; i >= 0; i -= 1) {
      const scenelet = story.byId.get(state.path[i]);
      if (scenelet && scenelet.next.type === 'branch' && branchChoices(scenelet).length > 0) return i;
    }
    return -1;
  }

  function backToLastChoice() {
    const at = lastChoiceIndex();
    if (at < 0 || state.confirming || !['playing', 'choice', 'terminal', 'incomplete'].includes(state.screen)) return;
    note('back', { sceneletId: state.path[at] });
    returnToChoice(at);
  }

  /** The choice overlay of the branch at position `at` of the path, its last frame behind it. */
  function returnToChoice(at) {
    const sceneletId = state.path[at];
    unpause({ resumeMusic: true }); // the overlay keeps the music of its scene going
    state.path = state.path.slice(0, at + 1);
    state.sceneletId = sceneletId;
    const scenelet = story.byId.get(sceneletId);
    state.shotPos = scenelet.shots.length - 1;
    progress.save();
    music.setCue(story.cueFor(sceneletId));
    if (scenelet.shots.length > 0) showImage(scenelet.shots[state.shotPos].imagePath);
    showChoices(scenelet);
  }

  function showEnd(kind) {
    abandonStep();
    unpause({ resumeMusic: false });
    music.setCue(null); // fades out
    state.phase = null;
    state.choices = [];
    setScreen(kind);
    progress.save();
    note(kind, { sceneletId: state.sceneletId });
    (kind === 'terminal' ? ui.terminalHeading : ui.incompleteHeading).focus({ preventScroll: true });
  }

  function goToStart() {
    closeConfirm();
    abandonStep();
    unpause({ resumeMusic: false });
    music.stopNow();
    state.sceneletId = null;
    state.shotPos = -1;
    state.phase = null;
    state.choices = [];
    state.path = [];
    ui.caption.replaceChildren();
    showImage(firstImage(story.rootId));
    setScreen('start');
    note('title-screen');
    (ui.continueButton.hidden ? ui.startButton : ui.continueButton).focus();
  }

  /** "Title screen" mid-story asks first; from an ending it just goes. */
  function askToLeave() {
    if (state.screen !== 'playing' && state.screen !== 'choice') {
      goToStart();
      return;
    }
    if (state.confirming) return;
    state.confirming = { wasPaused: state.paused };
    pause();
    ui.confirmScreen.hidden = false;
    ui.choiceScreen.inert = true;
    ui.controls.inert = true;
    note('confirm-leave');
    ui.confirmStay.focus();
  }

  function closeConfirm() {
    if (!state.confirming) return false;
    const { wasPaused } = state.confirming;
    state.confirming = false;
    ui.confirmScreen.hidden = true;
    ui.choiceScreen.inert = false;
    setScreen(state.screen);
    return !wasPaused;
  }

  function stayInStory() {
    if (closeConfirm()) resume();
    ui.homeButton.focus();
  }

  // ------------------------------------------------------------- pause/resume

  function togglePause() {
    if (state.paused) resume();
    else pause();
  }

  function pause() {
    if (state.paused || (state.screen !== 'playing' && state.screen !== 'choice')) return;
    state.paused = true;
    clock.pause();
    if (narration) narration.el.pause();
    if (branchNarration) branchNarration.pause();
    music.pause();
    renderPause();
    note('pause');
  }

  function resume() {
    if (!state.paused || state.confirming) return;
    state.paused = false;
    clock.resume();
    if (narration && !narration.settled) narration.play();
    if (branchNarration && !branchNarration.ended) branchNarration.play().catch(() => {});
    music.resume();
    renderPause();
    note('resume');
  }

  /** Leaves the paused state without resuming the step being abandoned. */
  function unpause({ resumeMusic }) {
    if (!state.paused) return;
    state.paused = false;
    clock.paused = false;
    if (resumeMusic) music.resume();
    renderPause();
  }

  function renderPause() {
    ui.pauseButton.setAttribute('aria-pressed', String(state.paused));
    ui.pauseLabel.textContent = state.paused ? 'Resume' : 'Pause';
    // SVG elements have no `hidden` property: use the attribute
    ui.iconPause.toggleAttribute('hidden', state.paused);
    ui.iconPlay.toggleAttribute('hidden', !state.paused);
    ui.pausedBadge.hidden = !state.paused;
    ui.app.classList.toggle('is-paused', state.paused);
  }

  // ----------------------------------------------------------------- screens

  function setScreen(screen) {
    state.screen = screen;
    ui.app.dataset.screen = screen;
    ui.startScreen.hidden = screen !== 'start';
    ui.choiceScreen.hidden = screen !== 'choice';
    ui.terminalScreen.hidden = screen !== 'terminal';
    ui.incompleteScreen.hidden = screen !== 'incomplete';
    ui.errorScreen.hidden = screen !== 'error';
    // the stage is decorative; keep keyboard focus out of whatever is covered
    ui.controls.inert = Boolean(state.confirming || state.history) || (screen !== 'playing' && screen !== 'choice');
    const canGoBack = story !== null && lastChoiceIndex() >= 0;
    ui.backButton.hidden = !canGoBack;
    for (const button of ui.backToChoice) button.hidden = !canGoBack;
    ui.nextButton.hidden = screen === 'choice';
    ui.progress.textContent = state.path.length > 0 ? `Scene ${state.path.length} of this path` : '';
    if (screen === 'start') renderStartActions();
  }

  function renderStartActions() {
    const saved = progress.load();
    ui.continueButton.hidden = !saved;
    ui.startLabel.textContent = saved ? 'Start from the beginning' : 'Start';
    ui.startButton.classList.toggle('button--primary', !saved);
    ui.startButton.classList.toggle('button--ghost', Boolean(saved));
  }

  function setCaptions(on) {
    state.captions = on;
    ui.app.classList.toggle('has-captions', on);
    ui.captionsButton.setAttribute('aria-pressed', String(on));
  }

  function showError(message) {
    state.screen = 'error';
    ui.errorText.textContent = message;
    setScreen('error');
  }

  // ------------------------------------------------------------ story so far

  /** Scenes of the path listed at most: a long path stays one short task to render. */
  const HISTORY_SCENES = 200;

  /**
   * What the captions showed on this path, oldest first: each shot's lines,
   * or its scene's description (once per scene, as consecutive shots repeat
   * it), and the choice taken at each branch. The current scene counts up to
   * the current shot (all of it on its overlay or ending), so after stepping
   * back the list ends where the viewer is.
   */
  function seenSoFar() {
    const entries = [];
    const first = Math.max(0, state.path.length - HISTORY_SCENES);
    if (first > 0) entries.push({ kind: 'more' });
    const last = state.path.length - 1;
    for (let i = first; i <= last; i += 1) {
      const scenelet = story.byId.get(state.path[i]);
      if (!scenelet) continue;
      const upTo = i < last || state.screen !== 'playing' ? scenelet.shots.length - 1 : state.shotPos;
      let described = false;
      for (let pos = 0; pos <= upTo; pos += 1) {
        const shot = scenelet.shots[pos];
        if (shot.lines.length > 0) {
          for (const line of shot.lines) entries.push({ kind: 'line', speaker: line.speaker, text: line.text });
        } else if (scenelet.description && !described) {
          entries.push({ kind: 'description', text: scenelet.description });
          described = true;
        }
      }
      const taken = i < last && isBranch(scenelet) ? branchChoices(scenelet).find((c) => c.sceneletId === state.path[i + 1]) : null;
      if (taken) entries.push({ kind: 'choice', text: text(taken.label) });
    }
    return entries;
  }

  function renderHistoryEntry(entry) {
    const item = document.createElement('li');
    item.className = `history__item history__item--${entry.kind}`;
    const words = document.createElement('span');
    words.className = 'history__text';
    if (entry.kind === 'more') {
      words.textContent = 'Earlier scenes are not listed.';
    } else if (entry.kind === 'choice') {
      const lead = document.createElement('span');
      lead.className = 'history__lead';
      lead.textContent = 'You chose: ';
      words.textContent = entry.text;
      item.append(lead);
    } else {
      if (entry.speaker) {
        const speaker = document.createElement('span');
        speaker.className = 'caption__speaker';
        speaker.textContent = entry.speaker;
        const colon = document.createElement('span');
        colon.className = 'visually-hidden';
        colon.textContent = ': ';
        item.append(speaker, colon);
      }
      words.textContent = entry.text;
    }
    item.append(words);
    return item;
  }

  /** L: the captions already shown, newest last, in a modal panel; the story waits meanwhile. */
  function openHistory() {
    if (state.history || state.confirming || !['playing', 'choice', 'terminal', 'incomplete'].includes(state.screen)) return;
    const entries = seenSoFar();
    const items = entries.map(renderHistoryEntry);
    if (entries.length === 0) {
      const empty = document.createElement('li');
      empty.className = 'history__item history__item--description';
      empty.textContent = 'Nothing has been shown yet.';
      items.push(empty);
    }
    ui.historyList.replaceChildren(...items);
    state.history = { wasPaused: state.paused, returnTo: document.activeElement };
    pause();
    ui.historyScreen.hidden = false;
    ui.story.inert = true;
    ui.controls.inert = true;
    ui.historyButton.setAttribute('aria-expanded', 'true');
    note('history-open', { entries: entries.length });
    ui.historyList.scrollTop = ui.historyList.scrollHeight; // newest last, in view
    ui.historyList.focus({ preventScroll: true }); // arrows and Space scroll it from here
  }

  function closeHistory() {
    if (!state.history) return;
    const { wasPaused, returnTo } = state.history;
    state.history = false;
    ui.historyScreen.hidden = true;
    ui.story.inert = false;
    ui.historyButton.setAttribute('aria-expanded', 'false');
    setScreen(state.screen);
    note('history-close');
    if (!wasPaused) resume();
    const back = returnTo && returnTo !== document.body && returnTo.isConnected && !returnTo.closest('[hidden]') ? returnTo : ui.story;
    back.focus({ preventScroll: true });
  }

  // ---------------------------------------------------------------- keyboard

  function onKeyDown(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (state.confirming) {
      if (event.key === 'Escape') {
        event.preventDefault();
        stayInStory();
      }
      return; // the dialog's own buttons take the rest
    }
    if (state.history) {
      if ((event.key === 'Escape' || event.key.toLowerCase() === 'l') && !event.repeat) {
        event.preventDefault();
        closeHistory();
      }
      return; // the story behind the panel waits; Space and arrows scroll the list
    }
    const inStory = state.screen === 'playing' || state.screen === 'choice';
    const onButton = document.activeElement && document.activeElement.tagName === 'BUTTON';
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === ' ') {
      if (onButton) return; // Space presses the focused button
      if (inStory) {
        event.preventDefault();
        if (!event.repeat) togglePause();
      } else if (state.screen === 'start') {
        event.preventDefault();
        startStory();
      }
      return;
    }
    if (state.screen === 'choice' && /^[1-9]$/.test(key)) {
      event.preventDefault();
      choose(Number(key) - 1);
      return;
    }
    const actions = {
      ArrowRight: nextShot,
      ArrowLeft: previousShot,
      b: backToLastChoice,
      l: openHistory,
      c: () => inStory && setCaptions(!state.captions),
      m: () => setMuted(!state.muted),
      f: toggleFullscreen,
    };
    if (Object.prototype.hasOwnProperty.call(actions, key) && !event.repeat) {
      if (key === 'ArrowRight' && !inStory) return;
      event.preventDefault();
      actions[key]();
      return;
    }
    if (state.screen === 'start' && key === 'Enter' && !onButton) startStory();
  }

  // ------------------------------------------------------------------ wiring

  async function init() {
    // the parser's own task (decoding a big page) ends before ours begins
    performance.mark('player-start');
    await nextTask();
    setCaptions(true);
    try {
      story = await loadStory();
    } catch (err) {
      showError(`The story data in this bundle could not be read (${err && err.message}).`);
      return;
    }
    progress.init();
    document.title = story.title;
    ui.startTitle.textContent = story.title;
    ui.topbarTitle.textContent = story.title;
    ui.startButton.addEventListener('click', startStory);
    ui.continueButton.addEventListener('click', continueStory);
    ui.restartButton.addEventListener('click', goToStart);
    ui.incompleteBack.addEventListener('click', goToStart);
    ui.homeButton.addEventListener('click', askToLeave);
    ui.confirmStay.addEventListener('click', stayInStory);
    ui.confirmLeave.addEventListener('click', goToStart);
    ui.pauseButton.addEventListener('click', togglePause);
    ui.nextButton.addEventListener('click', nextShot);
    ui.previousButton.addEventListener('click', previousShot);
    ui.historyButton.addEventListener('click', openHistory);
    ui.historyClose.addEventListener('click', closeHistory);
    ui.backButton.addEventListener('click', backToLastChoice);
    for (const button of ui.backToChoice) button.addEventListener('click', backToLastChoice);
    ui.captionsButton.addEventListener('click', () => setCaptions(!state.captions));
    ui.muteButton.addEventListener('click', () => setMuted(!state.muted));
    ui.fullscreenButton.addEventListener('click', toggleFullscreen);
    ui.soundPrompt.addEventListener('click', retrySound);
    // any click or key press is a gesture that lets sound play again
    document.addEventListener('click', retrySound, true);
    document.addEventListener('keydown', (event) => event.key !== 'Escape' && retrySound(), true);
    document.addEventListener('keydown', onKeyDown);
    document.addEventListener('keydown', () => ui.app.classList.add('is-keyed'), { capture: true, once: true });
    document.addEventListener('fullscreenchange', () => {
      ui.fullscreenButton.setAttribute('aria-pressed', String(Boolean(document.fullscreenElement)));
    });
    window.addEventListener('resize', fitCaption);
    showImage(firstImage(story.rootId));
    const opening = story.byId.get(story.rootId).shots[0];
    if (opening) preloadAudio(opening.audioPath);
    setScreen('start');
    // shown only now, with its handler in place: Start works the moment it is visible
    ui.startActions.hidden = false;
    (ui.continueButton.hidden ? ui.startButton : ui.continueButton).focus();
    performance.mark('player-ready'); // `make bench` measures time to interactive with it
  }

  /** Read-only test hook; the page works the same without it. */
  window.__player = Object.freeze({
    speed,
    timing: TIMING,
    state() {
      const scenelet = story && state.sceneletId ? story.byId.get(state.sceneletId) : null;
      const shot = scenelet && state.shotPos >= 0 ? scenelet.shots[state.shotPos] : null;
      return {
        screen: state.screen,
        sceneletId: state.sceneletId,
        sceneletLabel: scenelet ? scenelet.label : null,
        shotIndex: shot ? shot.shotIndex : null,
        shotPosition: shot ? state.shotPos : null,
        phase: state.phase,
        paused: state.paused,
        captions: state.captions,
        muted: state.muted,
        soundBlocked: state.soundBlocked,
        confirming: Boolean(state.confirming),
        history: Boolean(state.history),
        path: state.path.slice(),
        canGoBack: lastChoiceIndex() >= 0,
        image: state.image,
        imagePath: state.imagePath,
        musicCue: music.current ? music.current.cue : null,
        musicUrl: music.current ? music.current.el.src : null,
        musicPlaying: music.playing(),
        choices: state.choices.map((c) => Object.assign({}, c)),
      };
    },
    events: () => events.map((e) => Object.assign({}, e)),
  });

  init();
})();
