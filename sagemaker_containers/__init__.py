"""The one name AWS's XGBoost script-mode examples import from the retired `sagemaker-containers`
toolkit: `entry_point._wait_hostname_resolution()`. A requirements.txt that installs the real
package replaces this one."""
