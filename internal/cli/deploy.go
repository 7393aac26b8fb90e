package cli

import (
	"bytes"
	"io"
	"mime/multipart"
	"os"

	"github.com/spf13/cobra"
)

func newDeploy(stdout io.Writer) *cobra.Command {
	var f clientFlags
	var configFile, description string
	cmd := &cobra.Command{
		Use:   "deploy NAME MODULE.wasm",
		Short: "Deploy a module as a new version of a function",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			wasm, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			_ = mw.WriteField("name", args[0])
			if cmd.Flags().Changed("description") {
				_ = mw.WriteField("description", description)
			}
			if configFile != "" {
				cfg, err := os.ReadFile(configFile)
				if err != nil {
					return err
				}
				_ = mw.WriteField("config", string(cfg))
			}
			part, _ := mw.CreateFormFile("wasm", "module.wasm")
			_, _ = part.Write(wasm)
			if err := mw.Close(); err != nil {
				return err
			}
			b, _, err := c.do("POST", "/admin/v1/functions", mw.FormDataContentType(), &buf)
			if err != nil {
				return err
			}
			printJSON(stdout, b)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&configFile, "config-file", "", "JSON file with the function's config")
	cmd.Flags().StringVar(&description, "description", "", "description of the function")
	return cmd
}
