#!/bin/sh
# Writes this pod's redis.conf and sentinel.conf (into /conf, an emptyDir) for the Redis
# StatefulSet of a region: one primary, replicas, and a Sentinel beside each Redis.
#
# The primary is the one the running sentinels name; when none answers (the first start
# of the set), it is redis-0. So a pod that comes back after a failover rejoins as a
# replica of the new primary instead of starting a second one.
#
# Environment: POD_NAME, POD_NAMESPACE, REDIS_PASSWORD, REDIS_REPLICAS, REDIS_MASTER_NAME.
set -eu
: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${REDIS_PASSWORD:?}" "${REDIS_REPLICAS:?}" "${REDIS_MASTER_NAME:?}"

set_name=${POD_NAME%-*}
ordinal=${POD_NAME##*-}
domain="redis-headless.${POD_NAMESPACE}.svc"
self="${POD_NAME}.${domain}"

primary=""
i=0
while [ "$i" -lt "$REDIS_REPLICAS" ]; do
  if [ "$i" != "$ordinal" ]; then
    answer=$(REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli --no-auth-warning --raw \
      -h "${set_name}-${i}.${domain}" -p 26379 sentinel get-master-addr-by-name "$REDIS_MASTER_NAME" 2>/dev/null | head -n 1) || answer=""
    if [ -n "$answer" ]; then primary=$answer; break; fi
  fi
  i=$((i + 1))
done
[ -n "$primary" ] || primary="${set_name}-0.${domain}"
echo "redis-init: ${POD_NAME}: primary is ${primary}"

umask 077
{
  echo "port 6379"
  echo "dir /data"
  echo "appendonly yes"
  echo "appendfsync everysec"
  echo "requirepass ${REDIS_PASSWORD}"
  echo "masterauth ${REDIS_PASSWORD}"
  echo "replica-announce-ip ${self}"
  if [ "$primary" != "$self" ]; then echo "replicaof ${primary} 6379"; fi
} > /conf/redis.conf

{
  echo "port 26379"
  echo "dir /tmp"
  echo "sentinel resolve-hostnames yes"
  echo "sentinel announce-hostnames yes"
  echo "sentinel announce-ip ${self}"
  echo "requirepass ${REDIS_PASSWORD}"
  echo "sentinel sentinel-pass ${REDIS_PASSWORD}"
  echo "sentinel monitor ${REDIS_MASTER_NAME} ${primary} 6379 2"
  echo "sentinel auth-pass ${REDIS_MASTER_NAME} ${REDIS_PASSWORD}"
  echo "sentinel down-after-milliseconds ${REDIS_MASTER_NAME} 5000"
  echo "sentinel failover-timeout ${REDIS_MASTER_NAME} 60000"
  echo "sentinel parallel-syncs ${REDIS_MASTER_NAME} 1"
} > /conf/sentinel.conf
