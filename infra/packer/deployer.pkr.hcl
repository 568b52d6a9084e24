# The deployer's image: the release binary and site (cargo leptos build --release), a systemd
# unit, and a boot script that reads the config from SSM and the database password from the
# RDS-managed secret. Jenkinsfile bakes it per build; GBL-DEPLOYER (infra/deployer.yaml) runs it.
#
#   packer build -var "version=deployer-master-158" -var "source_dir=$PWD" infra/packer/deployer.pkr.hcl
#
# HCL2 as Packer 1.6 reads it (Debian's packer; `packer validate -syntax-only` runs in
# scripts/test).

variable "version" {
  type        = string
  description = "The build id, <project>-<branch>-<number>: the image's name and tag."
}

variable "source_dir" {
  type        = string
  description = "The checked-out repository, after `cargo leptos build --release`."
}

variable "region" {
  type    = string
  default = "eu-west-1"
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

source "amazon-ebs" "deployer" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "admin"
  ami_name      = "deployer-${var.version}"
  # Debian 12, as the build machine: the binary links against the same libc.
  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"]
    most_recent = true
  }
  encrypt_boot = true
  tags = {
    Name        = "deployer-${var.version}"
    "deployer:build" = var.version
  }
}

build {
  sources = ["source.amazon-ebs.deployer"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/deployer/site"]
  }

  provisioner "file" {
    source      = "${var.source_dir}/target/release/deployer"
    destination = "/tmp/deployer/deployer"
  }

  provisioner "file" {
    source      = "${var.source_dir}/target/site/"
    destination = "/tmp/deployer/site"
  }

  provisioner "file" {
    source      = "${var.source_dir}/infra/packer/deployer.service"
    destination = "/tmp/deployer/deployer.service"
  }

  provisioner "file" {
    source      = "${var.source_dir}/infra/packer/deployer-boot"
    destination = "/tmp/deployer/deployer-boot"
  }

  provisioner "file" {
    source      = "${var.source_dir}/infra/packer/deployer-password.service"
    destination = "/tmp/deployer/deployer-password.service"
  }

  provisioner "file" {
    source      = "${var.source_dir}/infra/packer/deployer-password.timer"
    destination = "/tmp/deployer/deployer-password.timer"
  }

  provisioner "shell" {
    environment_vars = ["DEPLOYER_VERSION=${var.version}"]
    execute_command  = "sudo -E sh -eux '{{ .Path }}'"
    inline = [
      "apt-get update -qq",
      "apt-get install -y -qq awscli jq curl ca-certificates",
      "useradd --system --home-dir /var/lib/deployer --create-home --shell /usr/sbin/nologin deployer",
      "install -d -o root -g root /opt/deployer /etc/deployer",
      "install -m 0755 /tmp/deployer/deployer /opt/deployer/deployer",
      "cp -r /tmp/deployer/site /opt/deployer/site",
      "install -m 0755 /tmp/deployer/deployer-boot /opt/deployer/deployer-boot",
      "install -m 0644 /tmp/deployer/deployer.service /etc/systemd/system/deployer.service",
      "install -m 0644 /tmp/deployer/deployer-password.service /etc/systemd/system/deployer-password.service",
      "install -m 0644 /tmp/deployer/deployer-password.timer /etc/systemd/system/deployer-password.timer",
      # The CA bundle the database's certificate is verified against (sslmode=verify-full).
      "curl -fsS https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem -o /opt/deployer/rds-global-bundle.pem",
      "systemctl enable deployer-password.timer",
      "echo \"$DEPLOYER_VERSION\" > /opt/deployer/VERSION",
      "systemctl enable deployer.service",
      "rm -rf /tmp/deployer",
    ]
  }

  # Jenkinsfile reads the image id from here into the build's parameters.json.
  post-processor "manifest" {
    output     = "packer-manifest.json"
    strip_path = true
  }
}
