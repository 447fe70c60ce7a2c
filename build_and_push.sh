#!/usr/bin/env bash
# Build the SageMaker XGBoost image and push it to Amazon ECR (or to any registry).
# Run ./build_and_push.sh --help for the options. The last line on stdout is the image reference.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: ./build_and_push.sh [options] [IMAGE_NAME]

Build the image and push it to Amazon ECR (default), to another registry, or nowhere.
The last line printed on stdout is the full image reference: paste it into
Estimator(image_uri=...) or Model(image_uri=...).

  IMAGE_NAME            repository name (default: sagemaker-xgboost-byoc)
  --tag TAG             image tag (default: the git commit; `latest` is tagged too)
  --region REGION       ECR region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then
                        `aws configure get region`; there is no built-in fallback)
  --platform PLATFORM   target platform (default: linux/amd64, what SageMaker runs)
  --registry HOST:PORT  push to this registry instead of ECR
  --no-push             build and tag only
  --wheel-dir DIR       offline: take Python packages from DIR (a folder made by
                        scripts/wheels.sh) instead of downloading them from PyPI
  --base-image IMAGE    build FROM IMAGE instead of the Dockerfile's pinned default
                        (offline: "$(scripts/base-image.sh)" makes a local Debian base)
  -h, --help            show this help

Normal:   ./build_and_push.sh my-xgboost
Offline:  ./build_and_push.sh --no-push --wheel-dir /media/wheels \
              --base-image "$(scripts/base-image.sh --local)" my-xgboost
EOF
}

say() { echo "build_and_push: $*" >&2; }
die() {
	say "$*"
	exit 1
}

name=sagemaker-xgboost-byoc
tag=
region=
platform=linux/amd64
registry=
push=true
wheel_dir=
base_image=

need_value() { [[ $2 -ge 2 ]] || die "$1 needs a value; see ./build_and_push.sh --help."; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	-h | --help)
		usage
		exit 0
		;;
	--tag)
		need_value "$1" $#
		tag=$2
		shift 2
		;;
	--region)
		need_value "$1" $#
		region=$2
		shift 2
		;;
	--platform)
		need_value "$1" $#
		platform=$2
		shift 2
		;;
	--registry)
		need_value "$1" $#
		registry=$2
		shift 2
		;;
	--no-push)
		push=false
		shift
		;;
	--wheel-dir)
		need_value "$1" $#
		wheel_dir=$2
		shift 2
		;;
	--base-image)
		need_value "$1" $#
		base_image=$2
		shift 2
		;;
	-*) die "unknown option '$1'; see ./build_and_push.sh --help." ;;
	*)
		name=$1
		shift
		;;
	esac
done

# Paths given on the command line are relative to the caller; everything else to the checkout.
[[ -z $wheel_dir ]] || wheel_dir=$(realpath -m "$wheel_dir")
cd "$(dirname "$0")"

[[ $name =~ ^[a-z0-9]+([._/-][a-z0-9]+)*$ ]] ||
	die "image name '$name' is not a valid repository name; use lower-case letters, digits, '.', '_', '-' and '/'."
if [[ -z $tag ]]; then
	tag=$(git rev-parse --short=12 HEAD 2>/dev/null) ||
		die "there is no git commit to tag the image with; pass --tag TAG."
	[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || tag="$tag-dirty"
fi
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
	die "tag '$tag' is not a valid Docker tag; use letters, digits, '_', '.' and '-' (at most 128)."
[[ -z $registry || $registry =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] ||
	die "registry '$registry' is not HOST or HOST:PORT; pass it like 127.0.0.1:5000."

command -v docker >/dev/null 2>&1 ||
	die "docker is not installed; install Docker (on Debian: scripts/docker-engine.sh) and run this again."
docker info >/dev/null 2>&1 ||
	die "the Docker engine does not answer; start it (on Debian: scripts/docker-engine.sh) and run this again."

# ECR: find the registry before the build, so a missing region or credential fails fast.
ecr=false
if $push && [[ -z $registry ]]; then
	ecr=true
	command -v aws >/dev/null 2>&1 ||
		die "the AWS CLI is not installed; install it (https://aws.amazon.com/cli/), or use --registry HOST:PORT or --no-push."
	[[ -n $region ]] || region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
	[[ -n $region ]] || region=$(aws configure get region 2>/dev/null || true)
	[[ -n $region ]] ||
		die "no AWS region is set; pass --region REGION, or set AWS_REGION, or run 'aws configure set region REGION'."
	[[ $region =~ ^[a-z]{2}(-[a-z]+)+-[0-9]+$ ]] ||
		die "'$region' is not an AWS region name; pass one like us-east-1 with --region."
	account=$(aws sts get-caller-identity --query Account --output text 2>/dev/null || true)
	[[ $account =~ ^[0-9]{12}$ ]] ||
		die "no valid AWS credentials were found; run 'aws configure' (or 'aws sso login') and try again."
	case "$region" in
	cn-*) domain=amazonaws.com.cn ;;
	*) domain=amazonaws.com ;;
	esac
	registry="$account.dkr.ecr.$region.$domain"
fi

# Python packages: a given offline folder, or downloaded (cached) into ./wheels.
if [[ -n $wheel_dir ]]; then
	[[ -d $wheel_dir ]] || die "wheel folder '$wheel_dir' does not exist; make it with scripts/wheels.sh DIR."
	if [[ $(realpath "$wheel_dir") != $(realpath -m wheels) ]]; then
		say "copying the wheels from $wheel_dir into the build context (wheels/)"
		mkdir -p wheels
		cp -u "$wheel_dir"/* wheels/
	fi
else
	scripts/wheels.sh --platform "$platform" wheels ||
		die "the Python packages could not be downloaded; pass --wheel-dir with a folder made by scripts/wheels.sh."
fi

local_ref="$name:$tag"
build_args=(--network host --platform "$platform" --tag "$local_ref" --tag "$name:latest")
[[ -z $base_image ]] || build_args+=(--build-arg "BASE_IMAGE=$base_image")
say "building $local_ref for $platform${base_image:+ from $base_image}"
docker build "${build_args[@]}" . >&2 ||
	die "docker build failed; read its output above, fix the cause and run this again."

if ! $push; then
	say "built $local_ref (not pushed)"
	echo "$local_ref"
	exit 0
fi

remote="$registry/$name"
if $ecr; then
	if ! errors=$(aws ecr describe-repositories --region "$region" --repository-names "$name" 2>&1 >/dev/null); then
		[[ $errors == *RepositoryNotFoundException* ]] ||
			die "could not look up ECR repository '$name' in $region; check that your credentials allow ecr:DescribeRepositories."
		say "creating ECR repository $name in $region (scan on push)"
		aws ecr create-repository --region "$region" --repository-name "$name" \
			--image-scanning-configuration scanOnPush=true >/dev/null 2>&1 ||
			die "could not create ECR repository '$name' in $region; check that your credentials allow ecr:CreateRepository."
	fi
	say "logging in to $registry"
	aws ecr get-login-password --region "$region" 2>/dev/null |
		docker login --username AWS --password-stdin "$registry" >/dev/null 2>&1 ||
		die "docker login to $registry failed; check your AWS credentials and that ecr:GetAuthorizationToken is allowed."
fi

for t in "$tag" latest; do
	docker tag "$local_ref" "$remote:$t"
	say "pushing $remote:$t"
	docker push "$remote:$t" >&2 ||
		die "the push to $registry was refused; check that you are logged in and may push to '$name' there."
done
say "pushed; use it as Estimator(image_uri=\"$remote:$tag\")"
echo "$remote:$tag"
