#!/bin/busybox sh
# lms-init: the appliance's first process. It brings up, in order: the
# kernel modules, the read-only system partition, the data partition,
# networking (DHCP in the background: the node serves learners without any
# network), lms-node, lms-updater (first boot: the factory bundle) and k3s
# when the image has it. Every service is supervised: restarted when it dies,
# with a pause that doubles up to 30 s. poweroff/reboot stop the services,
# sync and unmount /data before the power goes.
/bin/busybox --install -s /bin
export PATH=/system/bin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /run /tmp /system /data
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755,size=64m run /run
log() { echo "lms-init: $*" > /dev/console; }

loaded=0
for m in $(cat /etc/modules.order); do
    if insmod "/lib/modules/$m"; then loaded=$((loaded + 1)); else log "could not load $m"; fi
done
log "userspace up, $loaded modules loaded, kernel $(uname -r)"
if grep -q 'lms.smoke=1' /proc/cmdline; then
    poweroff -f
fi

# A GPT partition by its name (PARTNAME in the kernel's uevent), waiting for
# the disk driver to probe (up to 10 s).
part() {
    i=0
    while [ $i -lt 100 ]; do
        for u in /sys/class/block/*/uevent; do
            if grep -qx "PARTNAME=$1" "$u" 2>/dev/null; then
                d=${u%/uevent}
                echo "/dev/${d##*/}"
                return 0
            fi
        done
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# The system partition (read-only squashfs). Without it there is nothing to run.
until dev=$(part lms-system) && mount -t squashfs -o ro "$dev" /system; do
    log "no system partition (GPT name lms-system); retrying in 5 s"
    sleep 5
done
log "system partition $dev mounted read-only on /system ($(. /system/etc/os-release; echo "$IMAGE_ID build $BUILD_ID"))"

# The data partition (ext4; the journal replays on mount after a power cut).
# No fallback to RAM: a node that acknowledged writes it then lost would be
# worse than one that is not ready.
until dev=$(part lms-data) && mount -t ext4 -o rw,noatime,data=ordered "$dev" /data; do
    log "data partition (GPT name lms-data) cannot be mounted; retrying in 5 s"
    sleep 5
done
log "data partition $dev mounted on /data"
mkdir -p /data/etc /data/lms /data/modules /data/rancher
SETTINGS=/data/etc/lms.toml
if [ ! -e "$SETTINGS" ]; then
    cp /system/share/lms/lms.toml "$SETTINGS.tmp" && sync && mv "$SETTINGS.tmp" "$SETTINGS"
    log "no settings on the data partition: wrote the factory settings to $SETTINGS"
fi

# acpid listens on the input devices that exist when it starts: wait (up to
# 5 s) for the power button's event device first.
i=0
while [ $i -lt 50 ]; do
    ev=$(grep -A6 'Name="Power Button"' /proc/bus/input/devices 2>/dev/null | grep -o 'event[0-9]*' | head -n 1)
    [ -n "$ev" ] && [ -e "/dev/input/$ev" ] && break
    sleep 0.1
    i=$((i + 1))
done
acpid -c /etc/acpi -l /run/acpid.log || log "no acpid: the power button will not power off cleanly"
ip link set lo up
for i in /sys/class/net/*; do
    n=${i##*/}
    [ "$n" = lo ] && continue
    ip link set "$n" up
    # -b: keep trying in the background; the node does not wait for it.
    udhcpc -b -q -S -i "$n" -s /etc/udhcpc.script -p "/run/udhcpc.$n.pid" >/dev/null 2>&1 &
done

# supervise NAME COMMAND...: run it, restart it when it exits, with backoff.
supervise() {
    name=$1
    shift
    (
        pause=1
        trap 'kill -TERM $child 2>/dev/null; wait $child; exit 0' TERM
        while true; do
            started=$(cut -d. -f1 /proc/uptime)
            "$@" >>"/run/$name.log" 2>&1 &
            child=$!
            echo "$child" > "/run/$name.pid"
            wait $child
            code=$?
            [ $(($(cut -d. -f1 /proc/uptime) - started)) -gt 60 ] && pause=1
            log "$name exited ($code); restarting in ${pause}s"
            sleep "$pause"
            [ "$pause" -lt 30 ] && pause=$((pause * 2))
        done
    ) &
    echo $! > "/run/$name.supervisor"
    log "$name started"
}

supervise lms-node lms-node serve --config "$SETTINGS" --listen 0.0.0.0:8080 \
    --admin-listen 127.0.0.1:9090 --data-dir /data/lms --modules /data/modules/current

# Wait (up to 60 s) until lms-node answers, so the updater can reach it.
i=0
until wget -q -O /dev/null http://127.0.0.1:8080/healthz 2>/dev/null || [ $i -ge 300 ]; do
    sleep 0.2
    i=$((i + 1))
done
if [ ! -e /data/modules/current ]; then
    # First boot: the factory bundle through the updater's own verification
    # and health gate (it waits for the node to load it).
    if lms-updater --config "$SETTINGS" install /system/share/lms/factory.bundle >>/run/lms-updater.log 2>&1; then
        log "factory bundle installed"
    else
        log "factory bundle install failed; see /run/lms-updater.log"
    fi
fi
supervise lms-updater lms-updater --config "$SETTINGS" daemon

if [ -x /system/bin/k3s ]; then
    mkdir -p /var/lib /etc/rancher
    ln -sfn /data/rancher /var/lib/rancher
    ln -sfn /system/etc/rancher/k3s /etc/rancher/k3s
    mkdir -p /data/rancher/k3s/server/manifests
    cp /system/share/lms/k3s-manifests/* /data/rancher/k3s/server/manifests/ 2>/dev/null
    mkdir -p /data/rancher/k3s/agent/images
    ln -sf /system/share/k3s/images/* /data/rancher/k3s/agent/images/ 2>/dev/null
    supervise k3s k3s server --config /etc/rancher/k3s/config.yaml
else
    log "k3s is not in this image (optional input absent); not started"
fi

# Is any supervised service still running?
alive() {
    for s in lms-node lms-updater k3s; do
        [ -e "/run/$s.supervisor" ] && kill -0 "$(cat /run/$s.supervisor)" 2>/dev/null && return 0
    done
    return 1
}

shutdown() {
    log "stopping services"
    for s in k3s lms-updater lms-node; do
        [ -e "/run/$s.supervisor" ] && kill -TERM "$(cat /run/$s.supervisor)" 2>/dev/null
    done
    i=0
    while [ $i -lt 100 ] && alive; do
        sleep 0.1
        i=$((i + 1))
    done
    sync
    umount /data && log "data partition unmounted cleanly" || { mount -o remount,ro /data; log "data partition remounted read-only"; }
    umount /system
    sync
    log "$1"
    "$1" -f
}
trap 'shutdown poweroff' USR2
trap 'shutdown halt' USR1
trap 'shutdown reboot' TERM

if grep -q 'lms.debug=1' /proc/cmdline; then
    # Development images only: a root shell on the console, respawned.
    (while true; do setsid cttyhack sh -l; sleep 1; done) &
fi
log "ready to serve; settings $SETTINGS"
while true; do
    sleep 3600 &
    wait $!
done
